import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, Browser, createClient, openLoginPage, type TestClient } from './support/oauth.js';

/**
 * NUL and lone surrogates are refused at the edge with a 400 in each endpoint's documented shape:
 * JSON API `{"success": false, "error": {...}}`, OAuth endpoints RFC 6749 `invalid_request`, pages the
 * error page. One row per endpoint and field; none answers 5xx or logs an error.
 */
let env: TestEnv;
let key: string;
let orgId: string;
let rs: TestClient;
let web: TestClient;
let loginAction: { browser: Browser; action: URL; csrf: string };

beforeAll(async () => {
  env = await startTestServer();
  const s = env.server.services;
  orgId = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'edge' })).id;
  key = (await s.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'k', preset: 'full_access' } as any)).key;
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  web = await createClient(env, { orgId });
  const { browser, form } = await openLoginPage(env, web);
  loginAction = { browser, action: new URL(form.action, env.url), csrf: form.fields.csrf };
});
afterAll(async () => env?.close());

type Shape = 'json' | 'oauth' | 'page';
interface Row {
  name: string;
  shape: Shape;
  send: (bad: string) => Promise<Response>;
  /** Only NUL reaches this field (a URL or form cannot carry a lone surrogate: UTF-8 cannot encode one). */
  nulOnly?: boolean;
}

const NUL = '\u0000';
const SURROGATE = '\ud800';
const enc = encodeURIComponent;
const formBody = (fields: Record<string, string>) => Object.entries(fields).map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
const postForm = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${env.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: formBody(fields) });
const api = (method: string, path: string, body?: unknown) =>
  fetch(`${env.url}${path}`, {
    method,
    headers: { 'x-api-key': key, ...(body !== undefined && { 'content-type': 'application/json' }) },
    // JSON.stringify writes a lone surrogate as the escape \ud800: what an attacker sends.
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const page = (path: string, fields: Record<string, string>) => postForm(path, fields);

const rows: Row[] = [
  // OAuth endpoints (unauthenticated).
  { name: '/token client_id', shape: 'oauth', nulOnly: true, send: (b) => postForm('/token', { grant_type: 'client_credentials', client_id: `c${b}`, client_secret: 'x' }) },
  { name: '/token Basic client id', shape: 'oauth', nulOnly: true, send: (b) => postForm('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(`c${b}`, 'x') }) },
  { name: '/token refresh_token', shape: 'oauth', nulOnly: true, send: (b) => postForm('/token', { grant_type: 'refresh_token', refresh_token: `r${b}` }, { authorization: basicAuth(rs.clientId, rs.clientSecret!) }) },
  { name: '/token token-exchange subject_token', shape: 'oauth', nulOnly: true, send: (b) => postForm('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: `sk-${b}`, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }) },
  { name: '/auth client_id (query)', shape: 'page', nulOnly: true, send: (b) => fetch(`${env.url}/auth?client_id=${enc(`c${b}`)}&response_type=code&scope=openid`, { redirect: 'manual' }) },
  { name: '/auth redirect_uri (query)', shape: 'page', nulOnly: true, send: (b) => fetch(`${env.url}/auth?client_id=${web.clientId}&response_type=code&scope=openid&redirect_uri=${enc(`https://x${b}`)}`, { redirect: 'manual' }) },
  { name: '/token/introspection client_id', shape: 'oauth', nulOnly: true, send: (b) => postForm('/token/introspection', { token: 'x', client_id: `c${b}`, client_secret: 'x' }) },
  { name: '/token/introspection token', shape: 'oauth', nulOnly: true, send: (b) => postForm('/token/introspection', { token: `t${b}` }, { authorization: basicAuth(rs.clientId, rs.clientSecret!) }) },
  { name: '/token/revocation client_id', shape: 'oauth', nulOnly: true, send: (b) => postForm('/token/revocation', { token: 'x', client_id: `c${b}`, client_secret: 'x' }) },
  { name: '/ratelimit/check client_id', shape: 'oauth', nulOnly: true, send: (b) => postForm('/ratelimit/check', { category: 'webhook', key: '1.2.3.4', client_id: `c${b}`, client_secret: 'x' }) },
  { name: '/ratelimit/check key', shape: 'oauth', nulOnly: true, send: (b) => postForm('/ratelimit/check', { category: 'webhook', key: `1.2.3.4${b}` }, { authorization: basicAuth(rs.clientId, rs.clientSecret!) }) },
  { name: '/me access_token (query)', shape: 'oauth', nulOnly: true, send: (b) => fetch(`${env.url}/me?access_token=${enc(`t${b}`)}`) },
  { name: '/session/end id_token_hint', shape: 'page', nulOnly: true, send: (b) => postForm('/session/end', { id_token_hint: `x${b}` }) },
  { name: '/request (PAR) client_id', shape: 'oauth', nulOnly: true, send: (b) => postForm('/request', { client_id: `c${b}`, response_type: 'code' }) },
  // Sign-in forms.
  { name: 'dashboard sign-in email', shape: 'page', nulOnly: true, send: (b) => page('/dashboard/login', { csrf: 'x', email: `a${b}@example.test`, password: 'pw' }) },
  { name: 'OAuth sign-in email', shape: 'page', nulOnly: true, send: (b) => loginAction.browser.fetch(loginAction.action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: formBody({ csrf: loginAction.csrf, email: `a${b}@example.test`, password: 'pw' }) }) },
  // JSON API fields.
  { name: 'API key name', shape: 'json', send: (b) => api('POST', '/api/v1/auth/api-keys', { name: `k${b}`, preset: 'read_only' }) },
  { name: 'API key rename', shape: 'json', send: (b) => api('PATCH', '/api/v1/auth/api-keys/00000000-0000-4000-8000-000000000000', { name: `k${b}` }) },
  { name: 'webhook URL', shape: 'json', send: (b) => api('POST', '/api/v1/webhooks', { url: `https://example.com/${b}` }) },
  { name: 'webhook description', shape: 'json', send: (b) => api('POST', '/api/v1/webhooks', { url: 'https://example.com/', description: `d${b}` }) },
  { name: 'rate-limit override category name', shape: 'json', send: (b) => api('PUT', '/api/v1/rate-limits', { limits: { [`w${b}`]: { limit: 1, window: 60 } } }) },
  { name: 'audit action filter', shape: 'json', nulOnly: true, send: (b) => api('GET', `/api/v1/audit-events?action=${enc(`a${b}`)}`) },
  { name: 'audit actor filter', shape: 'json', nulOnly: true, send: (b) => api('GET', `/api/v1/audit-events?actor=${enc(`a${b}`)}`) },
  { name: 'audit cursor', shape: 'json', nulOnly: true, send: (b) => api('GET', `/api/v1/audit-events?cursor=${enc(`c${b}`)}`) },
  { name: 'whoami workflow_id', shape: 'json', nulOnly: true, send: (b) => api('GET', `/api/v1/auth/whoami?workflow_id=${enc(`w${b}`)}`) },
  { name: 'query parameter name', shape: 'json', nulOnly: true, send: (b) => api('GET', `/api/v1/auth/whoami?${enc(`x${b}`)}=1`) },
  // Ids in paths.
  { name: 'API key id in path', shape: 'json', nulOnly: true, send: (b) => api('GET', `/api/v1/auth/api-keys/${enc(`a${b}`)}`) },
  { name: 'webhook id in path', shape: 'json', nulOnly: true, send: (b) => api('GET', `/api/v1/webhooks/${enc(`a${b}`)}`) },
  { name: 'rate-limit key id in path', shape: 'json', nulOnly: true, send: (b) => api('PUT', `/api/v1/rate-limits/api-keys/${enc(`a${b}`)}`, { limits: null }) },
  { name: 'dashboard organization id in path', shape: 'page', nulOnly: true, send: (b) => fetch(`${env.url}/dashboard/orgs/${enc(`o${b}`)}/api-keys`, { redirect: 'manual' }) },
  { name: 'invitation token in path', shape: 'page', nulOnly: true, send: (b) => fetch(`${env.url}/dashboard/invitations/${enc(`t${b}`)}`) },
  { name: 'interaction id in path', shape: 'page', nulOnly: true, send: (b) => fetch(`${env.url}/interaction/${enc(`i${b}`)}`) },
  // Dashboard forms (org and app names, invitation emails, audit filters): refused before the session check.
  { name: 'organization name (settings form)', shape: 'page', nulOnly: true, send: (b) => page(`/dashboard/orgs/${orgId}/settings`, { csrf: 'x', name: `o${b}` }) },
  { name: 'app name (new OAuth app form)', shape: 'page', nulOnly: true, send: (b) => page(`/dashboard/orgs/${orgId}/oauth-apps/new`, { csrf: 'x', name: `a${b}`, redirect_uris: 'https://x.test/cb' }) },
  { name: 'invitation email (members form)', shape: 'page', nulOnly: true, send: (b) => page(`/dashboard/orgs/${orgId}/members/invite`, { csrf: 'x', email: `e${b}@example.test`, role: 'member' }) },
  { name: 'dashboard audit filter (query)', shape: 'page', nulOnly: true, send: (b) => fetch(`${env.url}/dashboard/orgs/${orgId}/audit-log?action=${enc(`a${b}`)}`, { redirect: 'manual' }) },
];

async function expectRefused(res: Response, shape: Shape) {
  const text = await res.text();
  expect(res.status, text.slice(0, 200)).toBe(400);
  if (shape === 'json') expect(JSON.parse(text)).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR', message: expect.any(String) } });
  if (shape === 'oauth') expect(JSON.parse(text)).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
  if (shape === 'page') {
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(text).toMatch(/<html/i);
  }
  expect(text).not.toContain(NUL);
}

describe('unsafe text at the edge', () => {
  const cases = rows.flatMap((r) => [
    { ...r, label: 'NUL', bad: NUL },
    ...(r.nulOnly ? [] : [{ ...r, label: 'lone surrogate', bad: SURROGATE }]),
  ]);
  it.each(cases)('$name ($label): 400 in the $shape shape', async (c) => {
    const errorsBefore = env.logs.lines.filter((l) => l.includes('"level":50')).length;
    await expectRefused(await c.send(c.bad), c.shape);
    await new Promise((r) => setTimeout(r, 20));
    expect(env.logs.lines.filter((l) => l.includes('"level":50')).slice(errorsBefore)).toEqual([]);
  });

  it('a surrogate pair (an emoji) is ordinary text and accepted', async () => {
    const r = await api('POST', '/api/v1/auth/api-keys', { name: 'deploy 🚀', preset: 'read_only' });
    expect(r.status).toBe(201);
  });

  it('percent-encoded bytes that are not UTF-8 never cause a 5xx', async () => {
    for (const path of ['/api/v1/auth/whoami?x=%ED%A0%80', '/api/v1/auth/api-keys/%ED%A0%80', '/auth?client_id=%ED%A0%80', '/dashboard/invitations/%ED%A0%80', '/api/v1/audit-events?action=%FF']) {
      const res = await fetch(`${env.url}${path}`, { headers: { 'x-api-key': key }, redirect: 'manual' });
      expect(res.status, path).toBeLessThan(500);
    }
  });
});
