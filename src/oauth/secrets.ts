import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Client secrets are 256-bit random strings, so a fast hash is enough (no dictionary to attack). */
export function newClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function secretMatches(presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashClientSecret(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
