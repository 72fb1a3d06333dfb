import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Client secrets are 256-bit random strings, so a fast hash is enough (no dictionary to attack). */
export function newClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * What `oauth_clients.secret_hash` holds: the SHA-256 (hex) of the current secret, and after a
 * rotation with a grace period also the previous secret's hash and when it stops working:
 * `<current>` or `<current> <previous>@<unix ms>`. Every secret check goes through secretMatches,
 * so the token endpoint and introspection honour the grace period alike.
 */
export function secretVerifier(currentHash: string, previous?: { hash: string; until: Date }): string {
  return previous ? `${currentHash} ${previous.hash}@${previous.until.getTime()}` : currentHash;
}

/** Until when the previous secret of a verifier still works; null when there is none (or it ended). */
export function previousSecretUntil(verifier: string, now = Date.now()): Date | null {
  const m = / [0-9a-f]{64}@(\d+)$/.exec(verifier);
  return m && Number(m[1]) > now ? new Date(Number(m[1])) : null;
}

/** The current secret's hash alone (a new grace period replaces an older one). */
export function currentSecretHash(verifier: string): string {
  return verifier.split(' ')[0];
}

function sameHash(presentedHash: Buffer, storedHex: string): boolean {
  const b = Buffer.from(storedHex, 'hex');
  return presentedHash.length === b.length && timingSafeEqual(presentedHash, b);
}

/** Constant-time check of a presented secret against a verifier (current, or previous within its grace). */
export function secretMatches(presented: string, verifier: string): boolean {
  const a = Buffer.from(hashClientSecret(presented), 'hex');
  const [current, previous] = verifier.split(' ');
  const okCurrent = sameHash(a, current);
  if (!previous) return okCurrent;
  const [hash, until] = previous.split('@');
  // Both are compared whatever the first gave, so timing tells nothing about which one matched.
  const okPrevious = sameHash(a, hash) && Number(until) > Date.now();
  return okCurrent || okPrevious;
}
