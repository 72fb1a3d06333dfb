import type { Context, Next } from 'koa';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { KeyValueStore } from '../storage/kv.js';
import { readForm, sendOAuth, sendOAuthError } from '../oauth/form-endpoint.js';
import { authenticateCaller, CallerAuthError, type CallerAuthDeps } from './client-auth.js';
import { denyJti } from '../oauth/deny-list.js';

/**
 * RFC 7009 for JWT access tokens, which oidc-provider refuses to revoke ("structured tokens"): the
 * token's `jti` goes on the deny list until it expires, and every instance flushes its caches.
 * Opaque tokens pass through to the provider untouched.
 */
export function jwtRevocationEndpoint(path: string, auth: CallerAuthDeps, publicJwks: { keys: object[] }, kv: KeyValueStore, flushCaches: () => void) {
  const getKey = createLocalJWKSet(publicJwks as any);
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== path || ctx.method !== 'POST' || !ctx.is('application/x-www-form-urlencoded')) return next();
    const raw = await readForm(ctx, 56 * 1024);
    if (raw === undefined) return;
    (ctx.req as any).body = raw; // the provider reads the consumed body from here
    const params = new URLSearchParams(raw);
    const token = params.get('token') ?? '';
    if (token.split('.').length !== 3) return next();
    let caller;
    try {
      caller = await authenticateCaller(auth, ctx.get('authorization') || undefined, params, { requireIntrospect: false });
    } catch (err) {
      if (!(err instanceof CallerAuthError)) throw err;
      return sendOAuthError(ctx, 401, 'invalid_client', err.description);
    }
    try {
      const { payload } = await jwtVerify(token, getKey, { issuer: auth.issuer, typ: 'at+jwt' });
      // RFC 7009 §2.1: only the client the token was issued to may revoke it.
      if (payload.client_id !== caller.clientId) {
        return sendOAuthError(ctx, 400, 'invalid_request', 'client is not authorized to revoke the presented token');
      }
      if (payload.jti && payload.exp) {
        await denyJti(kv, payload.jti, payload.exp);
        flushCaches();
      }
    } catch {
      // RFC 7009 §2.2: an invalid or unknown token still answers 200.
    }
    sendOAuth(ctx, 200, '');
  };
}

