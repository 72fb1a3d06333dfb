import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { KeyValueStore } from '../../storage/kv.js';
import type { ActiveAnswer } from '../types.js';
import { jwtDenied } from '../../oauth/deny-list.js';

/**
 * JWT access tokens (RFC 9068) that Flowgate signed. oidc-provider will not introspect them, so they
 * are verified here against Flowgate's own published keys, then checked against the `jti` deny list
 * that revocation fills (kept until the token's own expiry).
 */
export function jwtAccessTokenResolver(publicJwks: { keys: object[] }, kv: KeyValueStore, issuer: string) {
  const getKey = createLocalJWKSet(publicJwks as any);
  return async (token: string): Promise<ActiveAnswer | null> => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, { issuer, typ: 'at+jwt', requiredClaims: ['exp', 'jti'] }));
    } catch {
      return null;
    }
    if (await jwtDenied(kv, payload)) return null;
    return {
      active: true,
      scope: typeof payload.scope === 'string' ? payload.scope : '',
      client_id: payload.client_id as string,
      sub: payload.sub,
      exp: payload.exp,
      iat: payload.iat,
      iss: payload.iss,
      aud: payload.aud,
      token_type: 'Bearer',
      jti: payload.jti,
      credential_type: 'access_token',
      org_id: (payload.org_id as string | undefined) ?? null,
      team_id: (payload.team_id as string | undefined) ?? null,
      workflow_id: (payload.workflow_id as string | undefined) ?? null,
      ...(typeof payload.key_id === 'string' && { key_id: payload.key_id }),
    };
  };
}
