import { decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import type { KeyValueStore } from '../../storage/kv.js';
import { CLIENT_AUTH_SIGNING_ALGS } from '../../oauth/client-auth-algs.js';
import type { ClientDirectory } from '../client-directory.js';
import type { ClientKeys } from '../client-keys.js';
import { jwtDenied } from '../../oauth/deny-list.js';
import type { ActiveAnswer } from '../types.js';

export const MAX_SERVICE_JWT_LIFETIME = 3600;

/**
 * Service JWTs (seed 003 "JWT Authentication"): a registered client signs a short JWT with its own
 * key and sends it straight to a workflow service. Valid when the signature matches the client's
 * registered keys, `aud` is the workflow API, it expires within an hour, and every scope it asks
 * for is one the client is allowed.
 */
export function serviceJwtResolver(clients: ClientDirectory, clientKeys: ClientKeys, kv: KeyValueStore, apiAudience: string) {
  return async (token: string): Promise<ActiveAnswer | null> => {
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return null;
    }
    if (!claims.iss || claims.iss !== claims.sub) return null;
    const client = await clients.get(claims.iss);
    const getKey = client ? clientKeys.for(client) : undefined;
    if (!client || !getKey) return null;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: client.clientId,
        subject: client.clientId,
        audience: apiAudience,
        algorithms: CLIENT_AUTH_SIGNING_ALGS,
        requiredClaims: ['exp'],
      }));
    } catch {
      return null;
    }
    const now = Math.floor(Date.now() / 1000);
    if (payload.exp! - now > MAX_SERVICE_JWT_LIFETIME) return null;
    if (payload.iat !== undefined && payload.exp! - payload.iat > MAX_SERVICE_JWT_LIFETIME) return null;
    const requested = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    if (requested.some((s) => !client.scope.includes(s))) return null;
    if (await jwtDenied(kv, { jti: payload.jti })) return null;
    return {
      active: true,
      scope: requested.join(' '),
      client_id: client.clientId,
      sub: client.clientId,
      exp: payload.exp,
      iat: payload.iat,
      iss: payload.iss,
      aud: payload.aud,
      token_type: 'Bearer',
      ...(payload.jti && { jti: payload.jti }),
      credential_type: 'service_jwt',
      org_id: client.orgId,
      team_id: null,
      workflow_id: null,
    };
  };
}
