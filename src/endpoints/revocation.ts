import type { Context, Next } from 'koa';
import { decodeJwt, type JWTPayload } from 'jose';
import type { KeyValueStore } from '../storage/kv.js';
import { tags, type Invalidation } from '../storage/invalidation.js';
import { denyJti } from '../oauth/deny-list.js';
import type { OwnJwtVerifier } from '../credentials/own-jwt.js';
import type { ClientDirectory } from '../credentials/client-directory.js';
import type { ClientKeys } from '../credentials/client-keys.js';
import { verifyServiceJwt } from '../credentials/service-jwt.js';
import { authenticateClient, presentedMethods, type ClientAuthDeps } from './client-auth.js';
import { isForm, readForm } from './form.js';
import { answeringOAuthErrors, oauthErrors, sendKoa } from '../http/oauth-error.js';

export const REVOCATION_PATH = '/token/revocation';

export interface RevocationDeps {
  issuer: string;
  apiAudience: string;
  clientAuth: ClientAuthDeps;
  ownJwts: OwnJwtVerifier;
  clients: ClientDirectory;
  clientKeys: ClientKeys;
  kv: KeyValueStore;
  invalidation: Invalidation;
}

/**
 * POST /token/revocation (RFC 7009). Every request is read and checked here once (no repeated
 * parameter, one client authentication method); opaque tokens then go on to oidc-provider untouched.
 * JWTs, which the provider refuses to revoke ("structured tokens"), are revoked here: the token's
 * `jti` goes on the deny list until it expires and every instance drops what it cached of it.
 * - an access token signed by Flowgate, by the client it was issued to (RFC 7009 §2.1), including a
 *   token exchanged from an API key by an authenticated client;
 * - a service JWT, by the client that signed it (the deny list needs its `jti`).
 */
export function revocationEndpoint(d: RevocationDeps) {
  const endpointUrl = d.issuer + REVOCATION_PATH;
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== REVOCATION_PATH || ctx.method !== 'POST' || !isForm(ctx.get('content-type'))) return next();
    let passOn = false;
    await answeringOAuthErrors(ctx, async () => {
      const { raw, params } = await readForm(ctx.req, 56 * 1024);
      const authorization = ctx.get('authorization') || undefined;
      if (presentedMethods(authorization, params).length > 1) throw oauthErrors.invalidRequest('use exactly one client authentication method (RFC 6749 §2.3)');
      const token = params.get('token') ?? '';
      if (token.split('.').length !== 3) {
        (ctx.req as { body?: string }).body = raw; // the provider reads the consumed body from here
        passOn = true;
        return;
      }
      const caller = (await authenticateClient(d.clientAuth, authorization, params, { endpointUrl }))!;
      const jti = await revocableJti(d, token, caller.clientId);
      if (jti) {
        await denyJti(d.kv, jti.jti, jti.exp);
        await d.invalidation.publish(tags.jti(jti.jti));
      }
      // RFC 7009 §2.2: an invalid or unknown token still answers 200.
      sendKoa(ctx, { status: 200, body: '' });
    });
    if (passOn) await next();
  };
}

/** The `jti` and expiry of a JWT the caller may revoke; throws when it is someone else's (RFC 7009 §2.1). */
async function revocableJti(d: RevocationDeps, token: string, clientId: string): Promise<{ jti: string; exp: number } | undefined> {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(token);
  } catch {
    return undefined;
  }
  if (claims.iss === d.issuer) {
    const payload = await d.ownJwts.verify(token);
    if (!payload) return undefined;
    if (payload.client_id !== clientId) throw oauthErrors.invalidRequest('client is not authorized to revoke the presented token');
    return { jti: payload.jti!, exp: payload.exp! };
  }
  if (!claims.iss || claims.iss !== claims.sub) return undefined;
  const v = await verifyServiceJwt(token, claims.iss, d);
  if (!v) return undefined;
  if (v.client.clientId !== clientId) throw oauthErrors.invalidRequest('client is not authorized to revoke the presented token');
  return typeof v.payload.jti === 'string' ? { jti: v.payload.jti, exp: v.payload.exp! } : undefined;
}
