import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Keys are stored as HMAC-SHA-256(pepper, key), hex. The keys carry ~190 bits of randomness, so a
 * slow hash would add nothing but latency on the hot path; the pepper (kept out of the database)
 * means a leaked table alone cannot even confirm a guessed key.
 */
export function hashApiKey(pepper: string, key: string): string {
  return createHmac('sha256', pepper).update(key, 'utf8').digest('hex');
}

export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
