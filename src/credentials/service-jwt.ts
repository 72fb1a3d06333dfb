import { jwtVerify, type JWTPayload } from 'jose';
import { CLIENT_AUTH_SIGNING_ALGS } from '../oauth/client-auth-algs.js';
import { livesTooLong } from '../oauth/assertion-lifetime.js';
import type { ClientDirectory, ClientRecord } from './client-directory.js';
import type { ClientKeys } from './client-keys.js';

/**
 * Service JWTs: a registered client signs a short JWT with its own key and sends it straight to a
 * workflow service. Valid when the signature matches the client's registered keys, `aud` is the
 * workflow API, it lives at most an hour, and every scope it asks for is one the client holds.
 */
export async function verifyServiceJwt(
  token: string,
  claimedIssuer: string,
  d: { clients: ClientDirectory; clientKeys: ClientKeys; apiAudience: string },
): Promise<{ payload: JWTPayload; client: ClientRecord; scopes: string[] } | null> {
  const client = await d.clients.get(claimedIssuer);
  const getKey = client ? d.clientKeys.for(client) : undefined;
  if (!client || !getKey) return null;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, getKey, {
      issuer: client.clientId,
      subject: client.clientId,
      audience: d.apiAudience,
      algorithms: CLIENT_AUTH_SIGNING_ALGS,
      requiredClaims: ['exp'],
    }));
  } catch {
    return null;
  }
  if (livesTooLong(payload)) return null;
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
  if (scopes.some((s) => !client.scope.includes(s))) return null;
  return { payload, client, scopes };
}
