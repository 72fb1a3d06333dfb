import { decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { parseBasicAuth } from '../http/basic-auth.js';
import { isUnsafeText } from '../http/unsafe-text.js';
import { CLIENT_AUTH_SIGNING_ALGS } from '../oauth/client-auth-algs.js';
import { secretMatches } from '../oauth/secrets.js';
import type { ClientDirectory, ClientRecord } from '../credentials/client-directory.js';
import type { ClientKeys } from '../credentials/client-keys.js';
import { livesTooLong } from '../oauth/assertion-lifetime.js';
import { oauthErrors } from '../http/oauth-error.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface ClientAuthDeps {
  clients: ClientDirectory;
  clientKeys: ClientKeys;
  issuer: string;
  /** Audiences a client assertion may name besides the endpoint's own URL (issuer, token endpoint). */
  audiences: string[];
  /**
   * The single-use store of assertion `jti`s, shared with oidc-provider's own client authentication
   * (its ReplayDetection model), so that one assertion is accepted once across every endpoint.
   */
  replay: (iss: string, jti: string, exp: number) => Promise<boolean>;
}

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** Which client authentication methods a request presents (RFC 6749 §2.3: a client uses exactly one). */
export function presentedMethods(authorization: string | undefined, params: URLSearchParams): ClientAuthMethod[] {
  const methods: ClientAuthMethod[] = [];
  if (authorization && /^Basic /i.test(authorization)) methods.push('client_secret_basic');
  if (params.has('client_secret')) methods.push('client_secret_post');
  if (params.has('client_assertion') || params.has('client_assertion_type')) methods.push('private_key_jwt');
  return methods;
}

/**
 * The one client authentication of the endpoints Flowgate serves in front of the provider
 * (introspection, JWT revocation, token exchange, the rate-limit check): client_secret_basic,
 * client_secret_post or private_key_jwt, exactly one of them, and the one the client registered.
 * Returns the client, or null when none is presented and `optional` is set; throws OAuthError.
 */
export async function authenticateClient(
  d: ClientAuthDeps,
  authorization: string | undefined,
  params: URLSearchParams,
  opts: { endpointUrl: string; optional?: boolean },
): Promise<ClientRecord | null> {
  const methods = presentedMethods(authorization, params);
  if (methods.length > 1) throw oauthErrors.invalidRequest('use exactly one client authentication method (RFC 6749 §2.3)');
  if (methods.length === 0) {
    if (opts.optional) return null;
    throw oauthErrors.invalidClient('client authentication is required');
  }
  let client: ClientRecord;
  const method = methods[0];
  if (method === 'client_secret_basic') {
    const basic = parseBasicAuth(authorization);
    if (!basic) throw oauthErrors.invalidClient('malformed Basic credentials');
    client = await secretClient(d, basic.id, basic.secret, method);
  } else if (method === 'client_secret_post') {
    client = await secretClient(d, params.get('client_id') ?? '', params.get('client_secret') ?? '', method);
  } else {
    client = await assertedClient(d, params, opts.endpointUrl);
  }
  // A client_id sent beside another method must name the same client (RFC 6749 §3.2.1).
  const named = params.get('client_id');
  if (named !== null && named !== client.clientId) throw oauthErrors.invalidClient('client_id does not match the authenticated client');
  return client;
}

async function findClient(d: ClientAuthDeps, id: string): Promise<ClientRecord | null> {
  if (!id || id.length > 200 || isUnsafeText(id)) return null;
  return d.clients.get(id);
}

/** A client registered for this secret method whose stored hash matches (compared in constant time). */
async function secretClient(d: ClientAuthDeps, id: string, secret: string, method: ClientAuthMethod): Promise<ClientRecord> {
  const client = await findClient(d, id);
  if (!client || client.authMethod !== method || !client.secretHash || !secretMatches(secret, client.secretHash)) {
    throw oauthErrors.invalidClient('invalid client credentials');
  }
  return client;
}

/** RFC 7523 §3 client assertion: signed by the client's registered key, for us, short-lived, used once. */
async function assertedClient(d: ClientAuthDeps, params: URLSearchParams, endpointUrl: string): Promise<ClientRecord> {
  if (params.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) throw oauthErrors.invalidRequest(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`);
  const assertion = params.get('client_assertion') ?? '';
  let sub: string | undefined;
  try {
    sub = decodeJwt(assertion).sub;
  } catch {
    throw oauthErrors.invalidClient('invalid client_assertion');
  }
  const client = sub ? await findClient(d, sub) : null;
  const getKey = client && client.authMethod === 'private_key_jwt' ? d.clientKeys.for(client) : undefined;
  if (!client || !getKey) throw oauthErrors.invalidClient('invalid client_assertion');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, getKey, {
      issuer: client.clientId,
      subject: client.clientId,
      audience: [endpointUrl, ...d.audiences],
      algorithms: CLIENT_AUTH_SIGNING_ALGS,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch {
    throw oauthErrors.invalidClient('invalid client_assertion');
  }
  if (livesTooLong(payload)) throw oauthErrors.invalidClient('client_assertion must expire within an hour of its issue');
  // RFC 7523 §3 item 7: a jti may be used only once.
  if (!(await d.replay(client.clientId, payload.jti!, payload.exp!))) throw oauthErrors.invalidClient('client_assertion was already used');
  return client;
}
