import { generateKeyPair } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { followAuthorization, type TestClient } from './support/oauth.js';
import { API_KEY_TOKEN_TYPE, interopFixtures, JWT_BEARER, TOKEN_EXCHANGE, type InteropFixtures } from './support/interop.js';

/**
 * Flowgate's flows driven by openid-client 6, the certified OpenID relying-party library most Node
 * applications use: discovery, then each flow through its high-level functions.
 */
let env: TestEnv;
let f: InteropFixtures;

beforeAll(async () => {
  env = await startTestServer();
  f = await interopFixtures(env);
});
afterAll(async () => {
  await env?.close();
});

async function configure(c: TestClient, auth: client.ClientAuth, metadata: Partial<client.ClientMetadata> = {}): Promise<client.Configuration> {
  return client.discovery(new URL(env.url), c.clientId, metadata, auth, { execute: [client.allowInsecureRequests] });
}
const basic = (c: TestClient) => configure(c, client.ClientSecretBasic(c.clientSecret!));
const keyed = (c: TestClient) => configure(c, client.PrivateKeyJwt({ key: c.privateKey!, kid: c.publicJwk!.kid }));

async function refusal(p: Promise<unknown>): Promise<{ error: string; description?: string; status: number }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof client.ResponseBodyError) return { error: err.error, description: err.error_description, status: err.status };
    if (err instanceof client.WWWAuthenticateChallengeError) {
      const body = (await err.response.json()) as { error: string; error_description?: string };
      return { error: body.error, description: body.error_description, status: err.status };
    }
    throw err;
  }
  throw new Error('expected an OAuth error');
}

async function introspect(token: string) {
  return client.tokenIntrospection(await basic(f.rs), token);
}

describe('authorization code with PKCE, then refresh', () => {
  it('signs in, consents, exchanges the code and refreshes (offline_access with prompt=consent)', async () => {
    const config = await basic(f.web);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: f.web.redirectUri,
      scope: 'openid offline_access email workflows:read',
      prompt: 'consent',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const callback = await followAuthorization(env, url, f.user, { orgId: f.orgId });
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()).toMatchObject({ sub: f.user.id });
    expect(await client.fetchUserInfo(config, tokens.access_token, f.user.id)).toMatchObject({ email: f.user.email });
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, sub: f.user.id, org_id: f.orgId });
  });

  it('without prompt=consent, offline_access is dropped and no refresh token is issued (OpenID Connect Core §11)', async () => {
    const config = await basic(f.web);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: f.web.redirectUri,
      scope: 'openid offline_access workflows:read',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const callback = await followAuthorization(env, url, f.user, { orgId: f.orgId });
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.refresh_token).toBeUndefined();
  });
});

describe('client credentials with each client authentication', () => {
  it('client_secret_basic, client_secret_post and private_key_jwt', async () => {
    const configs = [await basic(f.web), await configure(f.post, client.ClientSecretPost(f.post.clientSecret!)), await keyed(f.service)];
    for (const config of configs) {
      const t = await client.clientCredentialsGrant(config, { scope: 'workflows:read' });
      expect(t.scope).toBe('workflows:read');
      expect(await introspect(t.access_token)).toMatchObject({ active: true, client_id: config.clientMetadata().client_id, org_id: f.orgId });
    }
  });

  it('with a resource indicator (RFC 8707) the token is a JWT for the workflow API (RFC 9068)', async () => {
    const t = await client.clientCredentialsGrant(await keyed(f.service), { resource: env.config.apiAudience });
    expect(t.access_token.split('.')).toHaveLength(3);
    expect(t.scope?.split(' ').sort()).toEqual(['workflows:execute', 'workflows:read']);
  });
});

describe('JWT-bearer grant with client authentication alongside', () => {
  it('private_key_jwt and client_secret_basic clients trade an assertion', async () => {
    const a = await client.genericGrantRequest(await keyed(f.service), JWT_BEARER, { assertion: await f.assertion(f.service), scope: 'workflows:execute' });
    expect(a.scope).toBe('workflows:execute');
    const b = await client.genericGrantRequest(await basic(f.secretService), JWT_BEARER, { assertion: await f.assertion(f.secretService, { aud: `${env.url}/token` }) });
    expect(await introspect(b.access_token)).toMatchObject({ active: true, client_id: f.secretService.clientId, scope: 'workflows:read' });
  });

  it('a bad assertion is invalid_grant, a bad client authentication invalid_client', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await refusal(client.genericGrantRequest(await keyed(f.service), JWT_BEARER, { assertion: await f.assertion(f.service, { key: privateKey }) }));
    expect(forged).toMatchObject({ error: 'invalid_grant', status: 400 });
    const tooLong = await refusal(client.genericGrantRequest(await keyed(f.service), JWT_BEARER, { assertion: await f.assertion(f.service, { exp: '2h' }) }));
    expect(tooLong.error).toBe('invalid_grant');
    const wrongSecret = await configure(f.secretService, client.ClientSecretBasic('not-the-secret'));
    const r = await refusal(client.genericGrantRequest(wrongSecret, JWT_BEARER, { assertion: await f.assertion(f.secretService) }));
    expect(r).toMatchObject({ error: 'invalid_client', status: 401 });
  });
});

describe('token exchange', () => {
  it('an API key buys a JWT bound to the authenticating client, carrying the key in key_id', async () => {
    const config = await basic(f.secretService);
    expect(config.serverMetadata().grant_types_supported).toContain(TOKEN_EXCHANGE);
    const t = await client.genericGrantRequest(config, TOKEN_EXCHANGE, { subject_token: f.apiKey.key, subject_token_type: API_KEY_TOKEN_TYPE });
    expect(t.access_token.split('.')).toHaveLength(3);
    expect(await introspect(t.access_token)).toMatchObject({ active: true, client_id: f.secretService.clientId, key_id: f.apiKey.id });
  });

  it('an inactive subject token is invalid_request (RFC 8693 §2.2.2)', async () => {
    const r = await refusal(client.genericGrantRequest(await basic(f.secretService), TOKEN_EXCHANGE, { subject_token: 'sk-' + 'B'.repeat(38), subject_token_type: API_KEY_TOKEN_TYPE }));
    expect(r.error).toBe('invalid_request');
  });
});

describe('introspection and revocation', () => {
  it('introspects each credential kind', async () => {
    const cc = await client.clientCredentialsGrant(await basic(f.web), { scope: 'workflows:read' });
    expect(await introspect(cc.access_token)).toMatchObject({ active: true, credential_type: 'access_token' });
    expect(await introspect(f.apiKey.key)).toMatchObject({ active: true, credential_type: 'api_key', key_id: f.apiKey.id });
    expect(await introspect('not-a-token')).toEqual({ active: false });
  });

  it('a JWT introspection response (RFC 9701) passes openid-client\'s signature check', async () => {
    const config = await configure(f.rs, client.ClientSecretBasic(f.rs.clientSecret!), { introspection_signed_response_alg: 'RS256' });
    client.enableNonRepudiationChecks(config);
    // openid-client also accepts a plain JSON answer: record what came back.
    const types: (string | null)[] = [];
    config[client.customFetch] = async (url, init) => {
      const res = await fetch(url, init as RequestInit);
      if (String(url).endsWith('/token/introspection')) types.push(res.headers.get('content-type'));
      return res;
    };
    expect(await client.tokenIntrospection(config, f.apiKey.key)).toMatchObject({ active: true, key_id: f.apiKey.id });
    expect(types).toHaveLength(1);
    expect(types[0]).toMatch(/^application\/token-introspection\+jwt/);
  });

  it('revokes a refresh token (RFC 7009) and it can no longer be used', async () => {
    const config = await basic(f.web);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: f.web.redirectUri,
      scope: 'openid offline_access',
      prompt: 'consent',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const tokens = await client.authorizationCodeGrant(config, await followAuthorization(env, url, f.user, { orgId: f.orgId }), { pkceCodeVerifier: verifier, expectedState: state });
    await client.tokenRevocation(config, tokens.refresh_token!);
    expect((await refusal(client.refreshTokenGrant(config, tokens.refresh_token!))).error).toBe('invalid_grant');
  });
});
