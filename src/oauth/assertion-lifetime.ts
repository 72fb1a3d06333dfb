import type { JWTPayload } from 'jose';

/**
 * Client assertions, JWT-bearer assertions and service JWTs are signed by the client itself; they may
 * live at most this long (RFC 7523 §3 leaves the bound to the server: one for every endpoint).
 */
export const MAX_SELF_SIGNED_LIFETIME = 3600;

/** True when a self-signed JWT promises to live longer than the cap allows (by exp, and by exp - iat). */
export function livesTooLong(payload: JWTPayload, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  if (typeof payload.exp !== 'number') return true;
  if (payload.exp - nowSeconds > MAX_SELF_SIGNED_LIFETIME) return true;
  return typeof payload.iat === 'number' && payload.exp - payload.iat > MAX_SELF_SIGNED_LIFETIME;
}
