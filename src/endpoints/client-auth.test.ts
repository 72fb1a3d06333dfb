import { describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ClientDirectory } from '../credentials/client-directory.js';
import { ClientKeys } from '../credentials/client-keys.js';
import type { ClientRows } from '../oauth/client-rows.js';
import type { OAuthClient } from '../oauth/entities.js';
import { hashClientSecret } from '../oauth/secrets.js';
import { authenticateClient, CLIENT_ASSERTION_TYPE, type ClientAuthDeps } from './client-auth.js';
import { OAuthError } from '../http/oauth-error.js';

const ISSUER = 'https://auth.example.test';
const ENDPOINT = `${ISSUER}/token/introspection`;

async function setup() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const row = (clientId: string, method: string, extra: Partial<OAuthClient> = {}): OAuthClient => ({
    clientId,
    orgId: 'org-1',
    name: clientId,
    metadata: { token_endpoint_auth_method: method, grant_types: ['client_credentials'], scope: '', ...(method === 'private_key_jwt' && { jwks: { keys: [jwk] } }) },
    secretHash: method.startsWith('client_secret') ? hashClientSecret('s3cret') : null,
    introspect: true,
    createdAt: new Date(),
    updatedAt: new Date(),
    ...extra,
  });
  const rows = new Map([row('basic', 'client_secret_basic'), row('post', 'client_secret_post'), row('pkjwt', 'private_key_jwt')].map((r) => [r.clientId, r]));
  const seen = new Set<string>();
  const deps: ClientAuthDeps = {
    clients: new ClientDirectory({ get: async (id: string) => rows.get(id) ?? null } as unknown as ClientRows),
    clientKeys: new ClientKeys(),
    issuer: ISSUER,
    audiences: [ISSUER],
    replay: async (iss, jti) => !seen.has(`${iss}${jti}`) && !!seen.add(`${iss}${jti}`),
  };
  const assertion = (opts: { exp?: number; iat?: number; jti?: string; aud?: string } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('pkjwt')
      .setSubject('pkjwt')
      .setAudience(opts.aud ?? ENDPOINT)
      .setIssuedAt(opts.iat ?? now)
      .setJti(opts.jti ?? crypto.randomUUID())
      .setExpirationTime(opts.exp ?? now + 60)
      .sign(privateKey);
  };
  return { deps, assertion };
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function failure(p: Promise<unknown>): Promise<{ status: number; error: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OAuthError) return { status: err.status, error: err.error };
    throw err;
  }
  throw new Error('expected an OAuthError');
}

describe('authenticateClient', () => {
  it('accepts each registered method, and only the registered one', async () => {
    const { deps, assertion } = await setup();
    const at = { endpointUrl: ENDPOINT };
    expect((await authenticateClient(deps, basic('basic', 's3cret'), new URLSearchParams(), at))!.clientId).toBe('basic');
    expect((await authenticateClient(deps, undefined, new URLSearchParams({ client_id: 'post', client_secret: 's3cret' }), at))!.clientId).toBe('post');
    const a = new URLSearchParams({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: await assertion() });
    expect((await authenticateClient(deps, undefined, a, at))!.clientId).toBe('pkjwt');
    expect(await failure(authenticateClient(deps, basic('post', 's3cret'), new URLSearchParams(), at))).toEqual({ status: 401, error: 'invalid_client' });
    expect(await failure(authenticateClient(deps, basic('basic', 'wrong'), new URLSearchParams(), at))).toEqual({ status: 401, error: 'invalid_client' });
  });

  it('refuses two methods at once (RFC 6749 §2.3) and a client_id naming another client', async () => {
    const { deps } = await setup();
    const at = { endpointUrl: ENDPOINT };
    const both = new URLSearchParams({ client_id: 'basic', client_secret: 's3cret' });
    expect(await failure(authenticateClient(deps, basic('basic', 's3cret'), both, at))).toEqual({ status: 400, error: 'invalid_request' });
    expect(await failure(authenticateClient(deps, basic('basic', 's3cret'), new URLSearchParams({ client_id: 'post' }), at))).toEqual({ status: 401, error: 'invalid_client' });
  });

  it('requires authentication unless optional, and refuses ids no store could hold', async () => {
    const { deps } = await setup();
    expect(await failure(authenticateClient(deps, undefined, new URLSearchParams(), { endpointUrl: ENDPOINT }))).toEqual({ status: 401, error: 'invalid_client' });
    expect(await authenticateClient(deps, undefined, new URLSearchParams(), { endpointUrl: ENDPOINT, optional: true })).toBeNull();
    expect(await failure(authenticateClient(deps, basic('ba\u0000sic', 's3cret'), new URLSearchParams(), { endpointUrl: ENDPOINT }))).toEqual({ status: 401, error: 'invalid_client' });
  });

  it('accepts an assertion once, for this server only, living at most an hour (RFC 7523 §3)', async () => {
    const { deps, assertion } = await setup();
    const at = { endpointUrl: ENDPOINT };
    const form = async (jwt: string) => new URLSearchParams({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: jwt });
    const once = await assertion({ jti: 'same' });
    expect((await authenticateClient(deps, undefined, await form(once), at))!.clientId).toBe('pkjwt');
    expect(await failure(authenticateClient(deps, undefined, await form(once), at))).toEqual({ status: 401, error: 'invalid_client' });
    const now = Math.floor(Date.now() / 1000);
    expect(await failure(authenticateClient(deps, undefined, await form(await assertion({ exp: now + 365 * 86400 })), at))).toEqual({ status: 401, error: 'invalid_client' });
    expect(await failure(authenticateClient(deps, undefined, await form(await assertion({ aud: 'https://elsewhere.test' })), at))).toEqual({ status: 401, error: 'invalid_client' });
  });
});
