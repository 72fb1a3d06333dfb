import type { KeyValueStore } from '../storage/kv.js';

/** Revoked JWTs stay listed by `jti` until they would have expired anyway. */
export const jtiDenyKey = (jti: string) => `revoked:jti:${jti}`;

export async function denyJti(kv: KeyValueStore, jti: string, exp: number): Promise<void> {
  const ttl = exp - Math.floor(Date.now() / 1000);
  if (ttl > 0) await kv.set(jtiDenyKey(jti), '1', ttl + 5);
}

/** Revoked grants, by the tag JWT access tokens carry (`gid`), kept as long as such a token may live. */
export const grantDenyKey = (tag: string) => `revoked:grant:${tag}`;

export async function denyGrant(kv: KeyValueStore, tag: string, ttlSeconds: number): Promise<void> {
  await kv.set(grantDenyKey(tag), '1', ttlSeconds);
}

/** Whether a JWT was revoked: by its own `jti`, or through its grant's tag (`gid`), in one round trip. */
export async function jwtDenied(kv: KeyValueStore, claims: { jti?: unknown; gid?: unknown }): Promise<boolean> {
  const keys = [
    ...(typeof claims.jti === 'string' ? [jtiDenyKey(claims.jti)] : []),
    ...(typeof claims.gid === 'string' ? [grantDenyKey(claims.gid)] : []),
  ];
  return keys.length > 0 && (await kv.mGet(keys)).some((v) => v !== null);
}
