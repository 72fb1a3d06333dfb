/**
 * The trust boundary of credentials: what a derived or orphaned credential may still do. Each case
 * is one hole an attack review found; every credential is read by the one resolver, so each is tested
 * where an attacker would use it (introspection, Flowgate's own API, the token endpoint), and where
 * it is cached, on a second instance.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { request as apiRequest } from './support/api.js';
import { SignJWT } from 'jose';
import { startTestServer, type TestEnv } from './support/server.js';
import { authorize, basicAuth, createClient, createOrg, createUser, oidc, tokenRequest, type TestClient } from './support/oauth.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE } from '../src/endpoints/token-exchange.js';
import { startServer, type RunningServer } from '../src/server.js';
import { createLogger } from '../src/http/logger.js';
import { freePort } from './support/process.js';
import { flowgateFetch } from '@flowgate/sdk/fetch';

let env: TestEnv;
let orgId: string;
let rs: TestClient;
let other: RunningServer;

async function introspect(token: string, extra: Record<string, string> = {}, url = env.url, client = rs) {
  const res = await fetch(new URL('/token/introspection', url), {
    method: 'POST',
    headers: { authorization: basicAuth(client.clientId, client.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, ...extra }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Polls until the condition holds or a second has passed; returns the last value. */
async function withinASecond<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 1000;
  let v = await read();
  while (!done(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    v = await read();
  }
  return v;
}

async function createKey(input: Record<string, unknown>, org = orgId, actor = { actor: CLI_ACTOR }) {
  return env.server.services.apiKeys.create(actor as never, org, { name: 'k', ...input } as never);
}

async function exchange(key: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return tokenRequest(env, { grant_type: TOKEN_EXCHANGE, subject_token: key, subject_token_type: API_KEY_TOKEN_TYPE, ...extra }, headers);
}

beforeAll(async () => {
  env = await startTestServer();
  // Enterprise: no key cap, this file creates many keys.
  orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'Trust', plan: 'enterprise' })).id;
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  other = await env.startInstance();
});
afterAll(async () => env?.close());

describe('a token exchanged from an API key is that key, and no more', () => {
  it('keeps the key\'s workflow restriction at Flowgate\'s API and cannot mint an unrestricted key', async () => {
    const { key } = await createKey({ scopes: ['workflows:read', 'api_keys:read', 'api_keys:write'], workflow_id: 'wf_a' });
    const jwt = (await exchange(key)).body.access_token as string;
    const mine = await request(env.url).get('/api/v1/auth/whoami?workflow_id=wf_a').set('Authorization', `Bearer ${jwt}`);
    expect(mine.status).toBe(200);
    expect(mine.body.data).toMatchObject({ kind: 'api_key', workflow_id: 'wf_a', exchanged: true });
    const elsewhere = await request(env.url).get('/api/v1/auth/whoami?workflow_id=wf_b').set('Authorization', `Bearer ${jwt}`);
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error.code).toBe('WORKFLOW_ACCESS_DENIED');
    const minted = await request(env.url).post('/api/v1/auth/api-keys').set('Authorization', `Bearer ${jwt}`).send({ name: 'escape', scopes: ['workflows:read'] });
    expect(minted.status).toBe(201);
    expect(minted.body.data.workflow_id).toBe('wf_a');
    const wider = await request(env.url).post('/api/v1/auth/api-keys').set('Authorization', `Bearer ${jwt}`).send({ name: 'escape', scopes: ['workflows:read'], workflow_id: 'wf_b' });
    expect(wider.status).toBe(403);
  });

  it('keeps the key\'s team restriction and budget-bearing identity at introspection', async () => {
    const teamId = (await env.server.services.accounts.createTeam(CLI_ACTOR, { orgId, name: `t-${randomBytes(3).toString('hex')}` })).id;
    const { key, apiKey } = await createKey({ preset: 'read_only', team_id: teamId });
    const jwt = (await exchange(key)).body.access_token as string;
    expect((await introspect(jwt)).body).toMatchObject({ active: true, key_id: apiKey.id, team_id: teamId, org_id: orgId });
  });

  it('the exchanged token of a key made by the CLI is accepted by Flowgate\'s API as the key is', async () => {
    const { key, apiKey } = await createKey({ scopes: ['api_keys:read'] });
    expect((await request(env.url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${key}`)).status).toBe(200);
    const jwt = (await exchange(key)).body.access_token as string;
    const me = await request(env.url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${jwt}`);
    expect(me.status).toBe(200);
    expect(me.body.data).toMatchObject({ kind: 'api_key', key_id: apiKey.id, role: 'admin' });
  });

  it('a narrowed key narrows the tokens already exchanged from it', async () => {
    const { key, apiKey } = await createKey({ scopes: ['workflows:read', 'workflows:write'] });
    const jwt = (await exchange(key)).body.access_token as string;
    expect((await introspect(jwt)).body.scope).toBe('workflows:read workflows:write');
    await env.server.services.apiKeys.update({ actor: CLI_ACTOR }, apiKey.id, { scopes: ['workflows:read'] });
    const after = await withinASecond(() => introspect(jwt, {}, other.url), (r) => r.body.scope === 'workflows:read');
    expect(after.body.scope).toBe('workflows:read');
  });

  it('spends the key\'s own budget, under the key\'s own limits', async () => {
    const { key, apiKey } = await createKey({ preset: 'read_only' });
    await env.server.services.rateLimits.policies.setKeyLimits(apiKey.id, { read: { limit: 2, window: '1m' } });
    const jwt = (await exchange(key)).body.access_token as string;
    const first = await introspect(key, { ratelimit_category: 'read' });
    expect(first.body.ratelimit).toMatchObject({ limit: 2, remaining: 1 });
    const second = await introspect(jwt, { ratelimit_category: 'read' });
    expect(second.body.ratelimit).toMatchObject({ limit: 2, remaining: 0 });
    const third = await introspect(jwt, { ratelimit_category: 'read' });
    expect(third.body.ratelimit).toMatchObject({ limited: true });
  });
});

describe('a token exchanged from an API key dies with it, on every instance within a second', () => {
  const dead = (r: { body: Record<string, any> }) => r.body.active === false;
  const refusedByApi = async (jwt: string, url: string) => (await request(url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${jwt}`)).status;

  it('when the key is revoked', async () => {
    const { key, apiKey } = await createKey({ scopes: ['api_keys:read', 'api_keys:write'] });
    const jwt = (await exchange(key)).body.access_token as string;
    expect((await introspect(jwt, {}, other.url)).body.active).toBe(true);
    expect(await refusedByApi(jwt, other.url)).toBe(200);
    await env.server.services.apiKeys.revoke({ actor: CLI_ACTOR }, apiKey.id);
    expect(dead(await withinASecond(() => introspect(jwt, {}, other.url), dead))).toBe(true);
    expect(await refusedByApi(jwt, other.url)).toBe(401);
    // Nor can it mint a key any more.
    expect((await request(other.url).post('/api/v1/auth/api-keys').set('Authorization', `Bearer ${jwt}`).send({ name: 'x', scopes: ['api_keys:read'] })).status).toBe(401);
  });

  it('when the key is rolled without grace, but not while a grace period lasts', async () => {
    const { key, apiKey } = await createKey({ preset: 'read_only' });
    const jwt = (await exchange(key)).body.access_token as string;
    await env.server.services.apiKeys.roll({ actor: CLI_ACTOR }, apiKey.id, 3600);
    await new Promise((r) => setTimeout(r, 100));
    expect((await introspect(jwt, {}, other.url)).body.active).toBe(true);
    await env.server.services.apiKeys.roll({ actor: CLI_ACTOR }, apiKey.id, 0);
    expect(dead(await withinASecond(() => introspect(jwt, {}, other.url), dead))).toBe(true);
  });

  it('when the key\'s creator leaves the organization', async () => {
    const user = await createUser(env, { orgIds: [orgId] });
    const principal = { kind: 'session', orgId, userId: user.id, role: 'member', scopes: ['workflows:read'] };
    const { key } = await createKey({ preset: 'read_only' }, orgId, { actor: { type: 'user', id: user.id }, principal } as never);
    const jwt = (await exchange(key)).body.access_token as string;
    expect((await introspect(jwt, {}, other.url)).body.active).toBe(true);
    await env.server.services.accounts.removeMember(CLI_ACTOR, orgId, user.id);
    expect(dead(await withinASecond(() => introspect(jwt, {}, other.url), dead))).toBe(true);
    expect(dead(await introspect(key, {}, other.url))).toBe(true);
  });

  it('and the client that exchanged it can revoke it (RFC 7009)', async () => {
    const app = await createClient(env, { orgId, grantTypes: ['client_credentials', TOKEN_EXCHANGE], redirectUris: [], scope: 'workflows:read' });
    const { key, apiKey } = await createKey({ preset: 'read_only' });
    const ex = await exchange(key, {}, { authorization: basicAuth(app.clientId, app.clientSecret!) });
    expect(ex.status).toBe(200);
    const jwt = ex.body.access_token as string;
    expect((await introspect(jwt)).body).toMatchObject({ active: true, client_id: app.clientId, key_id: apiKey.id });
    const revoked = await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: jwt }).toString(),
    });
    expect(revoked.status).toBe(200);
    expect(dead(await withinASecond(() => introspect(jwt, {}, other.url), dead))).toBe(true);
  });

  it('a client of another organization cannot exchange this organization\'s key', async () => {
    const foreign = await createClient(env, { grantTypes: ['client_credentials', TOKEN_EXCHANGE], redirectUris: [] });
    const { key } = await createKey({ preset: 'read_only' });
    const r = await exchange(key, {}, { authorization: basicAuth(foreign.clientId, foreign.clientSecret!) });
    expect(r).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });
});

describe('a removed member loses the organization at once', () => {
  let app: TestClient;
  beforeAll(async () => {
    app = await createClient(env, { orgId, grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access workflows:read api_keys:read' });
  });

  it('their access tokens (opaque and JWT) go inactive everywhere, their refresh tokens stop, and signing in again asks for consent', async () => {
    const user = await createUser(env, { orgIds: [orgId] });
    const opaque = await authorize(env, { client: app, user, orgId, scope: 'openid offline_access workflows:read', params: { prompt: 'consent' } });
    const jwt = await authorize(env, { client: app, user, orgId, scope: 'openid workflows:read', resource: env.config.apiAudience, browser: opaque.browser });
    const at = opaque.tokens!.access_token;
    const jat = jwt.tokens!.access_token;
    expect(jat.split('.')).toHaveLength(3);
    for (const t of [at, jat]) expect((await introspect(t, {}, other.url)).body).toMatchObject({ active: true, org_id: orgId });
    await env.server.services.accounts.removeMember(CLI_ACTOR, orgId, user.id);
    for (const t of [at, jat]) expect((await withinASecond(() => introspect(t, {}, other.url), (r) => !r.body.active)).body).toEqual({ active: false });
    await expect(oidc.refreshTokenGrant(opaque.config, opaque.tokens!.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Back in the organization, the old consent is not reused: the consent page is shown again.
    await env.server.services.accounts.createUser(CLI_ACTOR, { email: user.email, orgId, role: 'member' });
    const again = await authorize(env, { client: app, user, orgId, scope: 'openid workflows:read', browser: opaque.browser });
    expect(again.pages).toContain('consent');
  });

  it('a demoted admin\'s tokens lose admin powers at once', async () => {
    const user = await createUser(env, { orgIds: [orgId] });
    await env.server.services.accounts.changeRole(CLI_ACTOR, orgId, user.id, 'admin');
    const a = await authorize(env, { client: app, user, orgId, scope: 'openid api_keys:read', resource: env.config.apiAudience });
    const token = a.tokens!.access_token;
    const whoami = () => request(other.url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${token}`);
    expect((await whoami()).body.data.role).toBe('admin');
    await env.server.services.accounts.changeRole(CLI_ACTOR, orgId, user.id, 'member');
    const after = await withinASecond(whoami, (r) => r.body.data?.role === 'member');
    expect(after.body.data.role).toBe('member');
  });
});

describe('the management API ends what it removes, at once', () => {
  let app: TestClient;
  let admin: string;
  beforeAll(async () => {
    app = await createClient(env, { orgId, grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid offline_access workflows:read api_keys:read' });
    admin = (await createKey({ preset: 'full_access' })).key;
  });
  const api = () => apiRequest(env.url);
  const active = async (t: string) => (await introspect(t, {}, other.url)).body.active as boolean;
  const goneWithinASecond = async (t: string) => (await withinASecond(() => introspect(t, {}, other.url), (r) => !r.body.active)).body.active === false;

  it('PATCH /api/v1/members/{id} reaches the member\'s issued tokens (a demoted admin loses admin powers)', async () => {
    const user = await createUser(env, { orgIds: [orgId] });
    await env.server.services.accounts.changeRole(CLI_ACTOR, orgId, user.id, 'admin');
    const token = (await authorize(env, { client: app, user, orgId, scope: 'openid api_keys:read', resource: env.config.apiAudience })).tokens!.access_token;
    const role = async () => (await request(other.url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${token}`)).body.data?.role;
    expect(await role()).toBe('admin');
    await api().patch(`/api/v1/members/${user.id}`).set('x-api-key', admin).send({ role: 'member' }).expect(200);
    expect(await withinASecond(role, (r) => r === 'member')).toBe('member');
  });

  it('DELETE /api/v1/members/{id}/grants/{grant} ends that grant\'s tokens', async () => {
    const user = await createUser(env, { orgIds: [orgId] });
    const a = await authorize(env, { client: app, user, orgId, scope: 'openid offline_access workflows:read', params: { prompt: 'consent' } });
    const grants = await api().get(`/api/v1/members/${user.id}/grants`).set('x-api-key', admin).expect(200);
    expect(grants.body.data).toHaveLength(1);
    expect(await active(a.tokens!.access_token)).toBe(true);
    await api().delete(`/api/v1/members/${user.id}/grants/${grants.body.data[0].grant_id}`).set('x-api-key', admin).expect(200);
    expect(await goneWithinASecond(a.tokens!.access_token)).toBe(true);
    await expect(oidc.refreshTokenGrant(a.config, a.tokens!.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('DELETE /api/v1/members/{id} ends the member\'s keys, grants and tokens', async () => {
    const user = await createUser(env, { orgIds: [orgId] });
    const a = await authorize(env, { client: app, user, orgId, scope: 'openid offline_access workflows:read', params: { prompt: 'consent' } });
    const principal = { kind: 'session', orgId, userId: user.id, role: 'member', scopes: ['workflows:read'] };
    const { key } = await createKey({ preset: 'read_only' }, orgId, { actor: { type: 'user', id: user.id }, principal } as never);
    expect([await active(a.tokens!.access_token), await active(key)]).toEqual([true, true]);
    await api().delete(`/api/v1/members/${user.id}`).set('x-api-key', admin).expect(200);
    expect(await goneWithinASecond(a.tokens!.access_token)).toBe(true);
    expect(await goneWithinASecond(key)).toBe(true);
  });

  it('DELETE /api/v1/clients/{id} ends the client\'s grants and tokens', async () => {
    const doomed = await createClient(env, { orgId, grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'], scope: 'openid offline_access workflows:read' });
    const user = await createUser(env, { orgIds: [orgId] });
    const a = await authorize(env, { client: doomed, user, orgId, scope: 'openid offline_access workflows:read', params: { prompt: 'consent' } });
    const cc = (await tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read' }, { authorization: basicAuth(doomed.clientId, doomed.clientSecret!) })).body.access_token as string;
    expect([await active(a.tokens!.access_token), await active(cc)]).toEqual([true, true]);
    await api().delete(`/api/v1/clients/${doomed.clientId}`).set('x-api-key', admin).expect(200);
    expect(await goneWithinASecond(a.tokens!.access_token)).toBe(true);
    expect(await goneWithinASecond(cc)).toBe(true);
    expect(await env.server.services.consents.listForUser(user.id)).toEqual([]);
  });
});

describe('refresh tokens at introspection', () => {
  it('answer only their own client, with the organization the user chose, even for an app of another organization', async () => {
    const thirdParty = await createClient(env, { grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid offline_access workflows:read', introspect: true });
    const user = await createUser(env, { orgIds: [orgId] });
    const a = await authorize(env, { client: thirdParty, user, orgId, scope: 'openid offline_access workflows:read', params: { prompt: 'consent' } });
    const rt = a.tokens!.refresh_token!;
    const own = await introspect(rt, { token_type_hint: 'refresh_token' }, env.url, thirdParty);
    expect(own.body).toMatchObject({ active: true, credential_type: 'refresh_token', org_id: orgId, sub: user.id });
    expect((await introspect(rt, { token_type_hint: 'refresh_token' })).body).toEqual({ active: false });
  });
});

describe('a deleted OAuth client\'s tokens stop at once', () => {
  it('opaque and JWT client-credentials tokens go inactive on every instance', async () => {
    const app = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read' });
    const auth = { authorization: basicAuth(app.clientId, app.clientSecret!) };
    const opaque = (await tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read' }, auth)).body.access_token as string;
    const jwt = (await tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read', resource: env.config.apiAudience }, auth)).body.access_token as string;
    for (const t of [opaque, jwt]) expect((await introspect(t, {}, other.url)).body.active).toBe(true);
    await env.server.services.clients.delete(CLI_ACTOR, orgId, app.clientId);
    for (const t of [opaque, jwt]) expect((await withinASecond(() => introspect(t, {}, other.url), (r) => !r.body.active)).body).toEqual({ active: false });
  });
});

describe('service JWTs and client assertions', () => {
  let svc: TestClient;
  beforeAll(async () => {
    svc = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'private_key_jwt', scope: 'workflows:read', introspect: true });
  });
  const sign = (claims: Record<string, unknown>, aud: string, exp: string | number = '5m', iat?: number) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: svc.publicJwk!.kid })
      .setIssuer(svc.clientId)
      .setSubject(svc.clientId)
      .setAudience(aud)
      .setIssuedAt(iat)
      .setJti(randomBytes(8).toString('hex'))
      .setExpirationTime(exp)
      .sign(svc.privateKey!);

  it('a service JWT with a jti is revoked by the client that signed it', async () => {
    const jwt = await sign({ scope: 'workflows:read' }, env.config.apiAudience);
    expect((await introspect(jwt, {}, other.url)).body.active).toBe(true);
    const assertion = await sign({}, env.url);
    const r = await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: jwt, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }).toString(),
    });
    expect(r.status).toBe(200);
    expect((await withinASecond(() => introspect(jwt, {}, other.url), (x) => !x.body.active)).body).toEqual({ active: false });
  });

  it('one assertion is accepted once across /token and introspection', async () => {
    const assertion = await sign({}, env.url);
    const form = { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };
    expect((await tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read', ...form })).status).toBe(200);
    const again = await fetch(new URL('/token/introspection', env.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'x'.repeat(43), ...form }).toString(),
    });
    expect(again.status).toBe(401);
  });

  it('an assertion that lives a year is refused at introspection and at /token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const form = async () => ({ client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await sign({}, env.url, now + 365 * 86400, now) });
    const intro = await fetch(new URL('/token/introspection', env.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'x'.repeat(43), ...(await form()) }).toString(),
    });
    expect(intro.status).toBe(401);
    expect((await tokenRequest(env, { grant_type: 'client_credentials', ...(await form()) })).status).toBe(401);
  });
});

describe('form endpoints take each parameter once and one client authentication (RFC 6749 §3.1, §2.3)', () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(new URL(path, env.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body }).then(async (r) => ({ status: r.status, body: await r.json() }));

  it('repeated parameters are invalid_request at introspection, revocation, token and the rate-limit check', async () => {
    const auth = { authorization: basicAuth(rs.clientId, rs.clientSecret!) };
    for (const [path, body] of [
      ['/token/introspection', 'token=a&token=b'],
      ['/token/revocation', 'token=a&token=b'],
      ['/token', 'grant_type=client_credentials&scope=a&scope=b'],
      ['/token', `grant_type=${encodeURIComponent(TOKEN_EXCHANGE)}&subject_token=a&subject_token=b`],
      ['/ratelimit/check', 'category=webhook&key=1&key=2'],
    ] as const) {
      const r = await post(path, body, auth);
      expect([path, r.status, r.body.error]).toEqual([path, 400, 'invalid_request']);
    }
  });

  it('two client authentication methods at once are invalid_request', async () => {
    const both = `client_id=${rs.clientId}&client_secret=${rs.clientSecret}`;
    for (const path of ['/token/introspection', '/token/revocation', '/token', '/ratelimit/check']) {
      const r = await post(path, `${both}&token=x&grant_type=client_credentials&category=webhook&key=1`, { authorization: basicAuth(rs.clientId, rs.clientSecret!) });
      expect([path, r.status, r.body.error]).toEqual([path, 400, 'invalid_request']);
    }
  });

  it('a grant type the client is not registered for is unauthorized_client once it authenticates (RFC 6749 §5.2)', async () => {
    const r = await tokenRequest(env, { grant_type: 'authorization_code', code: 'x', redirect_uri: 'https://x.test/cb' }, { authorization: basicAuth(rs.clientId, rs.clientSecret!) });
    expect(r).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
    const wrong = await tokenRequest(env, { grant_type: 'authorization_code', code: 'x', redirect_uri: 'https://x.test/cb' }, { authorization: basicAuth(rs.clientId, 'wrong') });
    expect(wrong).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });
});

describe('query-string keys', () => {
  it('a key in a place its organization refuses is refused, whatever else is sent', async () => {
    const strict = await createOrg(env);
    await env.server.services.accounts.updateOrganization(CLI_ACTOR, strict, { settings: { allowQueryApiKey: false } });
    const { key } = await createKey({ scopes: ['api_keys:read'] }, strict);
    const both = await request(env.url).get(`/api/v1/auth/whoami?api-key=${key}`).set('x-api-key', key);
    expect(both.status).toBe(401);
    expect(both.body.error.code).toBe('QUERY_API_KEY_DISABLED');
    expect((await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', key)).status).toBe(200);
  });
});

describe('keys keep working when the deployment changes its key prefix', () => {
  it('at introspection, at Flowgate\'s API and through the SDK', async () => {
    const { key } = await createKey({ scopes: ['api_keys:read'] });
    expect(key.startsWith(env.config.apiKeys.prefix)).toBe(true);
    const port = await freePort();
    const renamed = await startServer({ ...env.config, port, apiKeys: { ...env.config.apiKeys, prefix: 'wfk_' } }, createLogger('silent'));
    try {
      const url = `http://127.0.0.1:${port}`;
      expect((await introspect(key, {}, url)).body).toMatchObject({ active: true, org_id: orgId });
      expect((await request(url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${key}`)).status).toBe(200);
      const sdk = flowgateFetch({ issuer: url, clientId: rs.clientId, clientSecret: rs.clientSecret! });
      for (const headers of [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }] as Record<string, string>[]) {
        const auth = await sdk.authenticate(new Request('http://service.test/api/v1/workflows', { headers }));
        expect(auth instanceof Response ? auth.status : auth.identity.orgId).toBe(orgId);
      }
      const fresh = await renamed.services.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'new', scopes: ['api_keys:read'] });
      expect(fresh.key.startsWith('wfk_')).toBe(true);
      expect((await introspect(fresh.key, {}, env.url)).body.active).toBe(true);
    } finally {
      await renamed.close();
    }
  });
});
