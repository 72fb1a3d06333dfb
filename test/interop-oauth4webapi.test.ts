import { generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { followAuthorization } from './support/oauth.js';
import { API_KEY_TOKEN_TYPE, interopFixtures, JWT_BEARER, TOKEN_EXCHANGE, type InteropFixtures } from './support/interop.js';

/**
 * Flowgate's flows driven by oauth4webapi (panva's low-level OAuth 2 / OIDC client), an independent
 * implementation of the client side of every RFC Flowgate serves: what a third-party developer's
 * code sends is what these requests are.
 */
let env: TestEnv;
let f: InteropFixtures;
let as: oauth.AuthorizationServer;
const insecure = { [oauth.allowInsecureRequests]: true } as const;

beforeAll(async () => {
  env = await startTestServer();
  f = await interopFixtures(env);
  const issuer = new URL(env.url);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
});
afterAll(async () => {
  await env?.close();
});

const basic = (c: { clientSecret?: string }) => oauth.ClientSecretBasic(c.clientSecret!);
const keyed = (c: InteropFixtures['service']) => oauth.PrivateKeyJwt({ key: c.privateKey!, kid: c.publicJwk!.kid });

/** The OAuth error a library call was refused with. */
async function refusal(p: Promise<unknown>): Promise<{ error: string; description?: string; status: number }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) return { error: err.error, description: err.error_description, status: err.status };
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      // A 401 answered with a challenge (RFC 6749 §5.2): the error is in the challenge and the body.
      const body = (await err.response.json()) as { error: string; error_description?: string };
      return { error: body.error, description: body.error_description, status: err.status };
    }
    throw err;
  }
  throw new Error('expected an OAuth error');
}

async function introspect(token: string, opts: oauth.IntrospectionRequestOptions = {}) {
  const res = await oauth.introspectionRequest(as, { client_id: f.rs.clientId }, basic(f.rs), token, { ...insecure, ...opts });
  return oauth.processIntrospectionResponse(as, { client_id: f.rs.clientId }, res);
}

describe('authorization code with PKCE, then refresh (RFC 6749 §4.1, RFC 7636, §6)', () => {
  it('signs in, consents, exchanges the code, refreshes with rotation and refuses the rotated-away token', async () => {
    const client: oauth.Client = { client_id: f.web.clientId };
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const url = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({
      client_id: client.client_id,
      redirect_uri: f.web.redirectUri,
      response_type: 'code',
      // offline_access (a refresh token) is granted only with prompt=consent (OpenID Connect Core §11).
      scope: 'openid offline_access workflows:read',
      prompt: 'consent',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })) url.searchParams.set(k, v);
    const callback = await followAuthorization(env, url, f.user, { orgId: f.orgId });
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const res = await oauth.authorizationCodeGrantRequest(as, client, basic(f.web), params, f.web.redirectUri, verifier, insecure);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: nonce, requireIdToken: true });
    expect(tokens.refresh_token).toBeTruthy();
    expect(oauth.getValidatedIdTokenClaims(tokens)!.sub).toBe(f.user.id);
    expect(await introspect(tokens.access_token)).toMatchObject({ active: true, org_id: f.orgId, sub: f.user.id });

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, basic(f.web), tokens.refresh_token!, insecure),
    );
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    const reused = await refusal(
      oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, basic(f.web), tokens.refresh_token!, insecure)),
    );
    expect(reused.error).toBe('invalid_grant');
  });
});

describe('client credentials (RFC 6749 §4.4) with each client authentication', () => {
  it('client_secret_basic, client_secret_post and private_key_jwt each get a token', async () => {
    for (const [c, auth] of [
      [f.web, basic(f.web)],
      [f.post, oauth.ClientSecretPost(f.post.clientSecret!)],
      [f.service, keyed(f.service)],
    ] as const) {
      const client = { client_id: c.clientId };
      const t = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'workflows:read' }, insecure));
      expect(t.scope).toBe('workflows:read');
      expect(await introspect(t.access_token)).toMatchObject({ active: true, client_id: c.clientId, org_id: f.orgId, scope: 'workflows:read' });
    }
  });

  it('without scope the token carries the client\'s registered scopes, not none', async () => {
    const client = { client_id: f.post.clientId };
    const t = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost(f.post.clientSecret!), {}, insecure));
    expect(t.scope?.split(' ').sort()).toEqual(['runs:read', 'workflows:read']);
    expect((await introspect(t.access_token)).scope?.split(' ').sort()).toEqual(['runs:read', 'workflows:read']);
  });

  it('a wrong secret is invalid_client', async () => {
    const client = { client_id: f.post.clientId };
    const r = await refusal(oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost('wrong'), {}, insecure)));
    expect(r.error).toBe('invalid_client');
  });
});

describe('JWT-bearer grant (RFC 7523 §2.1) with client authentication alongside (RFC 7521 §4.1)', () => {
  const grant = async (c: { clientId: string }, auth: oauth.ClientAuth, params: Record<string, string>) => {
    const client = { client_id: c.clientId };
    return oauth.processGenericTokenEndpointResponse(as, client, await oauth.genericTokenEndpointRequest(as, client, auth, JWT_BEARER, params, insecure));
  };

  it('private_key_jwt client authentication plus the assertion', async () => {
    const t = await grant(f.service, keyed(f.service), { assertion: await f.assertion(f.service), scope: 'workflows:read' });
    expect(t).toMatchObject({ token_type: 'bearer', scope: 'workflows:read' });
    expect(await introspect(t.access_token)).toMatchObject({ active: true, client_id: f.service.clientId, org_id: f.orgId });
  });

  it('client_secret_basic plus an assertion signed with the client\'s registered key; no scope: the registered ones', async () => {
    const t = await grant(f.secretService, basic(f.secretService), { assertion: await f.assertion(f.secretService) });
    expect(t.scope).toBe('workflows:read');
    expect(await introspect(t.access_token)).toMatchObject({ active: true, client_id: f.secretService.clientId });
  });

  it('errors about the assertion are invalid_grant (RFC 7523 §3.1), about the client invalid_client', async () => {
    const { privateKey: stranger } = await generateKeyPair('ES256');
    expect((await refusal(grant(f.service, keyed(f.service), { assertion: await f.assertion(f.service, { key: stranger }) }))).error).toBe('invalid_grant');
    expect((await refusal(grant(f.service, keyed(f.service), { assertion: await f.assertion(f.service, { aud: 'https://elsewhere.example' }) }))).error).toBe('invalid_grant');
    // An assertion of another client than the authenticated one.
    expect((await refusal(grant(f.secretService, basic(f.secretService), { assertion: await f.assertion(f.service) }))).error).toBe('invalid_grant');
    const noJti = await refusal(grant(f.service, keyed(f.service), { assertion: await f.assertion(f.service, { jti: null }) }));
    expect(noJti.error).toBe('invalid_grant');
    expect(noJti.description).toMatch(/jti/);
    const once = await f.assertion(f.service);
    await grant(f.service, keyed(f.service), { assertion: once });
    const replay = await refusal(grant(f.service, keyed(f.service), { assertion: once }));
    expect(replay).toMatchObject({ error: 'invalid_grant' });
    expect(replay.description).toMatch(/already used/);
    // The client's own authentication failing is invalid_client, whatever the assertion.
    const badSecret = await refusal(grant(f.secretService, oauth.ClientSecretBasic('wrong'), { assertion: await f.assertion(f.secretService) }));
    expect(badSecret).toMatchObject({ error: 'invalid_client', status: 401 });
  });

  it('the assertion alone (no other client authentication) still works, and its refusals are invalid_grant too', async () => {
    const t = await grant(f.service, oauth.None(), { assertion: await f.assertion(f.service), scope: 'workflows:execute' });
    expect(t.scope).toBe('workflows:execute');
    const { privateKey: stranger } = await generateKeyPair('ES256');
    const forged = await refusal(grant(f.service, oauth.None(), { assertion: await f.assertion(f.service, { key: stranger }) }));
    expect(forged).toMatchObject({ error: 'invalid_grant', status: 400 });
    const once = await f.assertion(f.service);
    await grant(f.service, oauth.None(), { assertion: once });
    expect(await refusal(grant(f.service, oauth.None(), { assertion: once }))).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('token exchange (RFC 8693): an API key for a short-lived JWT', () => {
  const exchange = async (subject: string, auth: oauth.ClientAuth, clientId: string) => {
    const client = { client_id: clientId };
    return oauth.processGenericTokenEndpointResponse(
      as,
      client,
      await oauth.genericTokenEndpointRequest(as, client, auth, TOKEN_EXCHANGE, { subject_token: subject, subject_token_type: API_KEY_TOKEN_TYPE, scope: 'workflows:read' }, insecure),
      { recognizedTokenTypes: { 'urn:ietf:params:oauth:token-type:access_token': (): void => {} } } as never,
    );
  };

  it('is listed in discovery', () => {
    expect(as.grant_types_supported).toContain(TOKEN_EXCHANGE);
  });

  it('an authenticating client gets a token whose client_id is its own, the key in key_id (RFC 8693 §2.2.1, RFC 9068 §2.2)', async () => {
    const t = await exchange(f.apiKey.key, basic(f.secretService), f.secretService.clientId);
    expect(t).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'workflows:read' });
    expect(await introspect(t.access_token)).toMatchObject({ active: true, client_id: f.secretService.clientId, key_id: f.apiKey.id, org_id: f.orgId });
  });

  it('an inactive subject token is invalid_request (RFC 8693 §2.2.2)', async () => {
    const r = await refusal(exchange('sk-' + 'A'.repeat(38), basic(f.secretService), f.secretService.clientId));
    expect(r.error).toBe('invalid_request');
  });
});

describe('introspection (RFC 7662) and revocation (RFC 7009)', () => {
  it('an API key introspects with its id in key_id, never as client_id (RFC 7662 §2.2)', async () => {
    const r = await introspect(f.apiKey.key);
    expect(r).toMatchObject({ active: true, credential_type: 'api_key', key_id: f.apiKey.id, org_id: f.orgId });
    expect(r.client_id).not.toBe(f.apiKey.id);
  });

  it('answers a signed JWT when asked (RFC 9701), verifiable with Flowgate\'s published keys', async () => {
    const client = { client_id: f.rs.clientId };
    const res = await oauth.introspectionRequest(as, client, basic(f.rs), f.apiKey.key, { ...insecure, requestJwtResponse: true });
    expect(res.headers.get('content-type')).toMatch(/^application\/token-introspection\+jwt/);
    const claims = await oauth.processIntrospectionResponse(as, client, res);
    expect(claims).toMatchObject({ active: true, key_id: f.apiKey.id });
    await oauth.validateApplicationLevelSignature(as, res, insecure);
  });

  it('revokes an access token and it introspects inactive', async () => {
    const client = { client_id: f.web.clientId };
    const t = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, basic(f.web), { scope: 'workflows:read' }, insecure));
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, basic(f.web), t.access_token, insecure));
    expect(await introspect(t.access_token)).toEqual({ active: false });
  });
});
