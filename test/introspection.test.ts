import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, createRemoteJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, type CryptoKey } from 'jose';
import { startTestServer, type TestEnv } from './support/server.js';
import { authorize, basicAuth, createClient, createOrg, createUser, tokenRequest, type TestClient } from './support/oauth.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { JWT_BEARER } from '../src/oauth/grants/jwt-bearer.js';
import { API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE } from '../src/endpoints/token-exchange.js';

let env: TestEnv;
let rs: TestClient; // the resource server that introspects
let orgId: string;

async function introspect(token: string, auth = basicAuth(rs.clientId, rs.clientSecret!), url = env.url, extra: Record<string, string> = {}) {
  const res = await fetch(new URL('/token/introspection', url), {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, ...extra }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function createKey(input: Record<string, unknown>, org = orgId) {
  return env.server.services.apiKeys.create({ actor: CLI_ACTOR }, org, { name: 'k', ...input } as any);
}

async function serviceJwt(c: TestClient, claims: Record<string, unknown>, opts: { aud?: string; exp?: string | number; key?: CryptoKey } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: c.publicJwk!.kid })
    .setIssuer(c.clientId)
    .setSubject(c.clientId)
    .setAudience(opts.aud ?? env.config.apiAudience)
    .setIssuedAt()
    .setJti(randomBytes(8).toString('hex'))
    .setExpirationTime(opts.exp ?? '10m')
    .sign(opts.key ?? c.privateKey!);
}

beforeAll(async () => {
  env = await startTestServer();
  orgId = await createOrg(env);
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
});
afterAll(async () => env?.close());

describe('who may introspect (RFC 7662 §2.1)', () => {
  it('refuses callers without client authentication, with a wrong secret, or without the permission', async () => {
    const { key } = await createKey({ preset: 'read_only' });
    const none = await fetch(new URL('/token/introspection', env.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: key }).toString(),
    });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: 'invalid_client' });
    expect((await introspect(key, basicAuth(rs.clientId, 'wrong'))).status).toBe(401);
    const plain = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [] });
    const r = await introspect(key, basicAuth(plain.clientId, plain.clientSecret!));
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('invalid_client');
  });

  it('accepts a resource server authenticating with private_key_jwt, once per assertion', async () => {
    const pk = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'private_key_jwt', introspect: true });
    const { key } = await createKey({ preset: 'read_only' });
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: pk.publicJwk!.kid })
      .setIssuer(pk.clientId)
      .setSubject(pk.clientId)
      .setAudience(env.url)
      .setJti(randomBytes(8).toString('hex'))
      .setExpirationTime('1m')
      .sign(pk.privateKey!);
    const body = { token: key, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };
    const post = () =>
      fetch(new URL('/token/introspection', env.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
    const first = await post();
    expect(first.status).toBe(200);
    expect(((await first.json()) as { active: boolean }).active).toBe(true);
    expect((await post()).status).toBe(401);
  });

  it('answers 405 to other methods, 413 to oversized bodies, keeps the request id, and logs the request without the token', async () => {
    const get = await fetch(new URL('/token/introspection', env.url));
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const big = await introspect('x'.repeat(20_000));
    expect(big.status).toBe(413);
    expect(big.body.error).toBe('invalid_request');
    const { key } = await createKey({ preset: 'read_only' });
    const res = await fetch(new URL('/token/introspection', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(rs.clientId, rs.clientSecret!), 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'trace-introspect-1' },
      body: new URLSearchParams({ token: key }).toString(),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-introspect-1');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const line = env.logs.lines.map((l) => JSON.parse(l)).find((l) => l.reqId === 'trace-introspect-1');
    expect(line).toMatchObject({ msg: 'request', method: 'POST', url: '/token/introspection', status: 200 });
    expect(env.logs.text).not.toContain(key);
    expect(env.logs.text).not.toContain(rs.clientSecret!);
  });

  it('answers as a JWT signed with Flowgate\'s published keys when asked (RFC 9701)', async () => {
    const { key, apiKey } = await createKey({ preset: 'read_only' });
    const res = await fetch(new URL('/token/introspection', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(rs.clientId, rs.clientSecret!), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/token-introspection+jwt' },
      body: new URLSearchParams({ token: key }).toString(),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/token-introspection+jwt');
    const jwt = await res.text();
    const { payload, protectedHeader } = await jwtVerify(jwt, createRemoteJWKSet(new URL('/jwks', env.url)), { issuer: env.url, audience: rs.clientId, typ: 'token-introspection+jwt' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.token_introspection).toMatchObject({ active: true, key_id: apiKey.id, org_id: orgId });
    const discovery = await (await fetch(new URL('/.well-known/openid-configuration', env.url))).json();
    expect(discovery.introspection_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256']));
    expect(discovery.grant_types_supported).toEqual(expect.arrayContaining([TOKEN_EXCHANGE]));
  });

  it('answers 400 invalid_request without a token and for a non-form body', async () => {
    expect((await introspect('')).status).toBe(400);
    const res = await fetch(new URL('/token/introspection', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(rs.clientId, rs.clientSecret!), 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'x' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });
});

describe('API keys', () => {
  it('answers active with Flowgate fields, and exactly {active:false} for unknown, malformed and revoked keys', async () => {
    const { key, apiKey } = await createKey({ scopes: ['workflows:read', 'runs:read'], workflow_id: 'wf_123' });
    const r = await introspect(key);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      active: true,
      credential_type: 'api_key',
      org_id: orgId,
      workflow_id: 'wf_123',
      key_id: apiKey.id,
      scope: 'workflows:read runs:read',
      token_type: 'Bearer',
      iss: env.url,
    });
    const flipped = key.slice(0, 10) + (key[10] === 'a' ? 'b' : 'a') + key.slice(11);
    expect((await introspect(flipped)).body).toEqual({ active: false });
    expect((await introspect('sk-' + 'x'.repeat(38))).body).toEqual({ active: false });
    await env.server.services.apiKeys.revoke({ actor: CLI_ACTOR }, apiKey.id);
    // The organization's own resource server learns why; anyone else gets exactly {active:false}.
    expect((await introspect(key)).body).toEqual({ active: false, inactive_reason: 'revoked' });
    const stranger = await createClient(env, { grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    expect((await introspect(key, basicAuth(stranger.clientId, stranger.clientSecret!))).body).toEqual({ active: false });
  });

  it('tells the organization\'s resource server that a key expired, and when', async () => {
    const expiresAt = new Date(Date.now() + 1500);
    const { key } = await createKey({ preset: 'read_only', expires_at: expiresAt.toISOString() });
    expect((await introspect(key)).body.active).toBe(true);
    await new Promise((r) => setTimeout(r, 1600));
    expect((await introspect(key)).body).toEqual({ active: false, inactive_reason: 'expired', expired_at: expect.any(String) });
  });

  it('sees a revocation made on another instance within one second', async () => {
    const other = await env.startInstance();
    const { key, apiKey } = await createKey({ preset: 'read_only' });
    expect((await introspect(key, undefined, other.url)).body.active).toBe(true);
    await env.server.services.apiKeys.revoke({ actor: CLI_ACTOR }, apiKey.id);
    const deadline = Date.now() + 1000;
    let answer: Record<string, any> = { active: true };
    while (Date.now() < deadline) {
      answer = (await introspect(key, undefined, other.url)).body;
      if (!answer.active) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(answer).toEqual({ active: false, inactive_reason: 'revoked' });
  });

  it('token exchange (RFC 8693): an API key buys a short-lived JWT with the same or narrower scopes', async () => {
    const { key, apiKey } = await createKey({ scopes: ['workflows:read', 'workflows:execute'], workflow_id: 'wf_9' });
    const ok = await tokenRequest(env, { grant_type: TOKEN_EXCHANGE, subject_token: key, subject_token_type: API_KEY_TOKEN_TYPE, scope: 'workflows:read' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', scope: 'workflows:read' });
    expect(ok.body.expires_in).toBeLessThanOrEqual(300);
    expect(decodeProtectedHeader(ok.body.access_token).typ).toBe('at+jwt');
    const r = await introspect(ok.body.access_token);
    expect(r.body).toMatchObject({ active: true, credential_type: 'access_token', org_id: orgId, workflow_id: 'wf_9', key_id: apiKey.id, scope: 'workflows:read' });
    const wider = await tokenRequest(env, { grant_type: TOKEN_EXCHANGE, subject_token: key, subject_token_type: API_KEY_TOKEN_TYPE, scope: 'workflows:write' });
    expect(wider).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    const bad = await tokenRequest(env, { grant_type: TOKEN_EXCHANGE, subject_token: key.slice(0, -1) + (key.endsWith('x') ? 'y' : 'x'), subject_token_type: API_KEY_TOKEN_TYPE });
    // RFC 8693 §2.2.2: an invalid subject token is an invalid_request.
    expect(bad).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });
});

describe('OAuth access tokens', () => {
  let app: TestClient;
  beforeAll(async () => {
    app = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read runs:read' });
  });

  it('opaque client_credentials token: active with org_id; inactive after revocation', async () => {
    const t = await tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read' }, { authorization: basicAuth(app.clientId, app.clientSecret!) });
    expect(t.status).toBe(200);
    // A wrong hint only orders the search (RFC 7662 §2.1: the server MUST extend it to every type).
    // Asked first, so that no cached answer hides the look-up.
    const hinted = await introspect(t.body.access_token, undefined, env.url, { token_type_hint: 'refresh_token' });
    expect(hinted.body).toMatchObject({ active: true, credential_type: 'access_token', client_id: app.clientId });
    const r = await introspect(t.body.access_token);
    expect(r.body).toMatchObject({ active: true, credential_type: 'access_token', client_id: app.clientId, org_id: orgId, scope: 'workflows:read' });
    const rev = await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.body.access_token }).toString(),
    });
    expect(rev.status).toBe(200);
    expect((await introspect(t.body.access_token)).body).toEqual({ active: false });
  });

  it('JWT access token (RFC 9068): verified by Flowgate, inactive after revocation on every instance', async () => {
    const t = await tokenRequest(
      env,
      { grant_type: 'client_credentials', scope: 'workflows:read', resource: env.config.apiAudience },
      { authorization: basicAuth(app.clientId, app.clientSecret!) },
    );
    expect(t.status).toBe(200);
    expect(t.body.access_token.split('.')).toHaveLength(3);
    const other = await env.startInstance();
    const r = await introspect(t.body.access_token, undefined, other.url);
    expect(r.body).toMatchObject({ active: true, credential_type: 'access_token', aud: env.config.apiAudience, org_id: orgId });
    // Another client may not revoke it (RFC 7009 §2.1).
    const stranger = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [] });
    const denied = await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(stranger.clientId, stranger.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.body.access_token }).toString(),
    });
    expect(denied.status).toBe(400);
    expect(await denied.json()).toMatchObject({ error: 'invalid_request' });
    // A failed client authentication is invalid_client with its challenge (RFC 6749 §5.2), never cached.
    const unauthenticated = await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(app.clientId, 'wrong'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.body.access_token }).toString(),
    });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(unauthenticated.headers.get('cache-control')).toBe('no-store');
    expect(await unauthenticated.json()).toMatchObject({ error: 'invalid_client' });
    expect((await introspect(t.body.access_token, undefined, other.url)).body.active).toBe(true);
    const rev = await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.body.access_token }).toString(),
    });
    expect(rev.status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect((await introspect(t.body.access_token, undefined, other.url)).body).toEqual({ active: false });
  });

  it('a revoked grant takes its JWT access tokens with it (refresh-token reuse, RFC 6749 §10.4)', async () => {
    const web = await createClient(env, { orgId, grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid offline_access workflows:read' });
    const user = await createUser(env, { orgIds: [orgId] });
    const r = await authorize(env, { client: web, user, scope: 'openid offline_access workflows:read', resource: env.config.apiAudience, params: { prompt: 'consent' } });
    const at = r.tokens!.access_token;
    const rt = r.tokens!.refresh_token!;
    expect((await introspect(at)).body).toMatchObject({ active: true, org_id: orgId, sub: user.id });
    const auth = { authorization: basicAuth(web.clientId, web.clientSecret!) };
    const rotated = await tokenRequest(env, { grant_type: 'refresh_token', refresh_token: rt, resource: env.config.apiAudience }, auth);
    expect(rotated.status).toBe(200);
    // Presenting the rotated-away refresh token again revokes the whole grant.
    const reuse = await tokenRequest(env, { grant_type: 'refresh_token', refresh_token: rt, resource: env.config.apiAudience }, auth);
    expect(reuse.body.error).toBe('invalid_grant');
    await new Promise((res) => setTimeout(res, 100));
    expect((await introspect(at)).body).toEqual({ active: false });
    expect((await introspect(rotated.body.access_token)).body).toEqual({ active: false });
  });

  it('a JWT signed by a key Flowgate does not hold, or a tampered one, is inactive', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ scope: 'workflows:read', client_id: app.clientId })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(env.url)
      .setAudience(env.config.apiAudience)
      .setJti('x')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await introspect(forged)).body).toEqual({ active: false });
  });
});

describe('server-to-server JWTs', () => {
  let svc: TestClient;
  beforeAll(async () => {
    svc = await createClient(env, {
      orgId,
      grantTypes: ['client_credentials', JWT_BEARER],
      redirectUris: [],
      authMethod: 'private_key_jwt',
      scope: 'workflows:read workflows:execute',
    });
  });

  it('service JWT straight to a workflow service: active when signature, audience, lifetime and scopes hold', async () => {
    const good = await serviceJwt(svc, { scope: 'workflows:read' });
    expect((await introspect(good)).body).toMatchObject({ active: true, credential_type: 'service_jwt', client_id: svc.clientId, org_id: orgId, scope: 'workflows:read' });
    expect((await introspect(await serviceJwt(svc, { scope: 'workflows:read' }, { aud: 'https://elsewhere.example' }))).body).toEqual({ active: false });
    expect((await introspect(await serviceJwt(svc, { scope: 'workflows:read' }, { exp: '2h' }))).body).toEqual({ active: false });
    expect((await introspect(await serviceJwt(svc, { scope: 'connections:write' }))).body).toEqual({ active: false });
    const { privateKey } = await generateKeyPair('ES256');
    expect((await introspect(await serviceJwt(svc, { scope: 'workflows:read' }, { key: privateKey }))).body).toEqual({ active: false });
    expect((await introspect(await serviceJwt(svc, { scope: 'workflows:read' }, { exp: Math.floor(Date.now() / 1000) - 5 }))).body).toEqual({ active: false });
  });

  it('JWT-bearer grant (RFC 7523 §2.1): a signed assertion buys a scoped token, once', async () => {
    const assertion = await serviceJwt(svc, {}, { aud: env.url, exp: '5m' });
    const ok = await tokenRequest(env, { grant_type: JWT_BEARER, assertion, scope: 'workflows:read' });
    expect(ok.status).toBe(200);
    expect(ok.body.scope).toBe('workflows:read');
    expect((await introspect(ok.body.access_token)).body).toMatchObject({ active: true, client_id: svc.clientId, org_id: orgId });
    const replay = await tokenRequest(env, { grant_type: JWT_BEARER, assertion, scope: 'workflows:read' });
    expect(replay.status).toBeGreaterThanOrEqual(400);
    expect(['invalid_grant', 'invalid_client']).toContain(replay.body.error);
    const longLived = await serviceJwt(svc, {}, { aud: env.url, exp: '3h' });
    expect(await tokenRequest(env, { grant_type: JWT_BEARER, assertion: longLived })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const { privateKey } = await generateKeyPair('ES256');
    const foreign = await serviceJwt(svc, {}, { aud: env.url, key: privateKey });
    const refused = await tokenRequest(env, { grant_type: JWT_BEARER, assertion: foreign });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    const wide = await tokenRequest(env, { grant_type: JWT_BEARER, assertion: await serviceJwt(svc, {}, { aud: env.url }), scope: 'connections:write' });
    expect(wide).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
  });

  it('an organization\'s resource server sees only its organization\'s credentials; a platform-wide one sees all', async () => {
    const otherOrg = await createOrg(env);
    const foreign = await createClient(env, { orgId: otherOrg, grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'private_key_jwt', scope: 'workflows:read' });
    const jwt = await serviceJwt(foreign, { scope: 'workflows:read' });
    const { key } = await createKey({ preset: 'read_only' }, otherOrg);
    expect((await introspect(jwt)).body).toEqual({ active: false });
    expect((await introspect(key)).body).toEqual({ active: false });
    const platform = await createClient(env, { orgId: null, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    const asPlatform = basicAuth(platform.clientId, platform.clientSecret!);
    expect((await introspect(jwt, asPlatform)).body).toMatchObject({ active: true, org_id: otherOrg });
    expect((await introspect(key, asPlatform)).body).toMatchObject({ active: true, org_id: otherOrg });
  });
});

