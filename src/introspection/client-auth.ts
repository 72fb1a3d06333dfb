import { jwtVerify, decodeJwt } from 'jose';
import type { KeyValueStore } from '../storage/kv.js';
import { parseBasicAuth } from '../http/basic-auth.js';
import { secretMatches } from '../oauth/secrets.js';
import { CLIENT_AUTH_SIGNING_ALGS } from '../oauth/client-auth-algs.js';
import type { ClientDirectory, ClientRecord } from './client-directory.js';
import type { ClientKeys } from './client-keys.js';
import type { Caller } from './types.js';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export class CallerAuthError extends Error {
  constructor(readonly description: string) {
    super(description);
  }
}

export interface CallerAuthDeps {
  clients: ClientDirectory;
  clientKeys: ClientKeys;
  kv: KeyValueStore;
  issuer: string;
  endpointUrl: string;
}

/**
 * Authenticates the resource server calling introspection (RFC 7662 §2.1: the endpoint MUST require
 * authorization). client_secret_basic, client_secret_post or private_key_jwt; the client must hold
 * the introspection permission.
 */
export async function authenticateCaller(
  deps: CallerAuthDeps,
  authorization: string | undefined,
  params: URLSearchParams,
  opts: { requireIntrospect?: boolean } = { requireIntrospect: true },
): Promise<Caller> {
  let client: ClientRecord;
  if (authorization && /^Basic /i.test(authorization)) {
    const basic = parseBasicAuth(authorization);
    if (!basic) throw new CallerAuthError('malformed Basic credentials');
    client = await secretClient(deps, basic.id, basic.secret, 'client_secret_basic');
  } else if (params.get('client_assertion_type') === ASSERTION_TYPE) {
    client = await verifyAssertion(deps, params.get('client_assertion') ?? '');
  } else if (params.has('client_secret')) {
    client = await secretClient(deps, params.get('client_id') ?? '', params.get('client_secret') ?? '', 'client_secret_post');
  } else {
    throw new CallerAuthError('client authentication is required');
  }
  if (opts.requireIntrospect !== false && !client.introspect) throw new CallerAuthError('client is not allowed to introspect');
  return { clientId: client.clientId, orgId: client.orgId };
}

/** A client registered for this secret method whose stored hash matches (compared in constant time). */
async function secretClient(deps: CallerAuthDeps, id: string, secret: string, method: 'client_secret_basic' | 'client_secret_post'): Promise<ClientRecord> {
  const client = await deps.clients.get(id);
  if (!client || client.authMethod !== method || !client.secretHash || !secretMatches(secret, client.secretHash)) {
    throw new CallerAuthError('invalid client credentials');
  }
  return client;
}

async function verifyAssertion(deps: CallerAuthDeps, assertion: string): Promise<ClientRecord> {
  let sub: string | undefined;
  try {
    sub = decodeJwt(assertion).sub;
  } catch {
    throw new CallerAuthError('invalid client_assertion');
  }
  const client = sub ? await deps.clients.get(sub) : null;
  const getKey = client && client.authMethod === 'private_key_jwt' ? deps.clientKeys.for(client) : undefined;
  if (!client || !getKey) throw new CallerAuthError('invalid client_assertion');
  try {
    const { payload } = await jwtVerify(assertion, getKey, {
      issuer: client.clientId,
      subject: client.clientId,
      audience: [deps.issuer, deps.endpointUrl],
      algorithms: CLIENT_AUTH_SIGNING_ALGS,
      requiredClaims: ['exp', 'jti'],
    });
    // RFC 7523 §3 item 7: a jti may be used only once.
    const fresh = await deps.kv.setNX(`introspect:jti:${client.clientId}:${payload.jti}`, '1', Math.max(1, payload.exp! - Math.floor(Date.now() / 1000)) + 60);
    if (!fresh) throw new CallerAuthError('client_assertion was already used');
  } catch (err) {
    if (err instanceof CallerAuthError) throw err;
    throw new CallerAuthError('invalid client_assertion');
  }
  return client;
}
