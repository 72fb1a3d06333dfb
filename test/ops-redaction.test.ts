import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { Browser, createClient, parseForms } from './support/oauth.js';

// Every request here carries a secret somewhere a careless logger would write it. The server runs at
// debug level, so anything that logs more than the request line gets the same scrutiny.
let env: TestEnv;
const secret = (label: string) => `${label}-${randomBytes(18).toString('base64url')}`;
const used: Record<string, string> = {};
const remember = (label: string) => (used[label] = secret(label));

beforeAll(async () => {
  env = await startTestServer({ LOG_LEVEL: 'debug' });
});
afterAll(async () => env?.close());

function basic(id: string, pw: string) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(pw)}`).toString('base64')}`;
}

async function form(path: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(`${env.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

describe('log redaction', () => {
  it('never writes credentials, secrets or passwords to the log', async () => {
    const basicClient = await createClient(env, { grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'client_secret_basic' });
    const postClient = await createClient(env, { grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'client_secret_post' });
    used.basicClientSecret = basicClient.clientSecret!;
    used.postClientSecret = postClient.clientSecret!;

    // client_secret_basic: a wrong secret, then the right one (which issues a token).
    expect((await form('/token', { grant_type: 'client_credentials' }, { authorization: basic(basicClient.clientId, remember('wrongBasic')) })).status).toBe(401);
    const ok = await form('/token', { grant_type: 'client_credentials' }, { authorization: basic(basicClient.clientId, basicClient.clientSecret!) });
    expect(ok.status).toBe(200);
    used.accessToken = ((await ok.json()) as { access_token: string }).access_token;

    // client_secret_post: secret in the form body, wrong and right.
    expect((await form('/token', { grant_type: 'client_credentials', client_id: postClient.clientId, client_secret: remember('wrongPost') })).status).toBe(401);
    expect((await form('/token', { grant_type: 'client_credentials', client_id: postClient.clientId, client_secret: postClient.clientSecret! })).status).toBe(200);

    // Tokens in bodies (refresh, code, revocation) and in the query string.
    await form('/token', { grant_type: 'refresh_token', refresh_token: remember('refreshToken') }, { authorization: basic(basicClient.clientId, basicClient.clientSecret!) });
    await form('/token', { grant_type: 'authorization_code', code: remember('authCode'), redirect_uri: 'https://x.test/cb' }, { authorization: basic(basicClient.clientId, basicClient.clientSecret!) });
    await form('/token/revocation', { token: remember('revokeToken') }, { authorization: basic(basicClient.clientId, basicClient.clientSecret!) });

    // Bearer tokens: a real one and a made-up one, at userinfo and at Flowgate's JSON API.
    await fetch(`${env.url}/me`, { headers: { authorization: `Bearer ${used.accessToken}` } });
    await fetch(`${env.url}/me`, { headers: { authorization: `Bearer ${remember('bearerMe')}` } });
    await fetch(`${env.url}/me?access_token=${remember('accessTokenQuery')}`);
    await fetch(`${env.url}/api/v1/auth/api-keys`, { headers: { authorization: `Bearer ${remember('bearerApi')}` } });
    await fetch(`${env.url}/api/v1/auth/api-keys`, { headers: { 'x-api-key': remember('xApiKey') } });
    await fetch(`${env.url}/api/v1/auth/api-keys?api-key=${remember('apiKeyQuery')}`);
    await fetch(`${env.url}/api/v1/auth/api-keys?limit=5&api-key=${remember('apiKeyQuery2')}&x=1`);
    await fetch(`${env.url}/readyz`, { headers: { cookie: `_session=${remember('cookie1')}; other=${remember('cookie2')}` } });
    await fetch(`${env.url}/auth?client_id=nope`, { headers: { cookie: `_interaction=${remember('cookie3')}` } });

    // The login form: a wrong password, then the right one (session cookies come back).
    const password = remember('password');
    const { accounts } = env.server.services;
    const org = await accounts.createOrganization(CLI_ACTOR, { name: 'Redaction' });
    const email = `redact-${randomBytes(4).toString('hex')}@example.test`;
    await accounts.createUser(CLI_ACTOR, { email, password, orgId: org.id, role: 'member' });
    const webClient = await createClient(env, { orgId: org.id });
    const verifier = randomBytes(32).toString('base64url');
    const auth = new URL(`${env.url}/auth`);
    auth.search = new URLSearchParams({
      client_id: webClient.clientId,
      response_type: 'code',
      redirect_uri: webClient.redirectUri,
      scope: 'openid',
      state: 'st',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    const browser = new Browser();
    const start = await browser.get(auth);
    expect(start.status).toBe(303);
    const page = await browser.get(new URL(start.headers.get('location')!, env.url));
    const login = parseForms(await page.text()).find((f) => 'password' in f.fields)!;
    const action = new URL(login.action, env.url);
    const wrong = await browser.postForm(action, { ...login.fields, email, password: remember('wrongPassword') });
    expect(wrong.status).toBe(401);
    const retry = parseForms(await wrong.text()).find((f) => 'password' in f.fields)!;
    const right = await browser.postForm(action, { ...retry.fields, email, password });
    expect(right.status).toBe(303);
    // Cookie values, except the interaction uid: oidc-provider puts it in the page's URL path by
    // design (/interaction/<uid>); the signed `.sig` cookie and the session cookie are what bind it.
    const cookieValues = browser.jar.setCookieHeaders
      .filter((h) => !/path=\/(interaction|auth)\//i.test(h) || h.includes('.sig='))
      .map((h) => h.split(';')[0])
      .map((c) => c.slice(c.indexOf('=') + 1))
      .filter((v) => v.length >= 16);
    expect(cookieValues.length).toBeGreaterThan(0);
    cookieValues.forEach((v, i) => (used[`sessionCookie${i}`] = v));
    // Present the real session cookies on a later request, as a browser would.
    await browser.get(auth);

    // Give pino's stream a moment to flush, then look.
    await new Promise((r) => setTimeout(r, 100));
    const text = env.logs.text;
    // The requests were logged (so the check below is looking at something)...
    expect(env.logs.lines.filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(15);
    expect(text).toContain('api-key=[redacted]');
    expect(text).toContain('access_token=[redacted]');
    // ...and none of the secrets is in them.
    const leaked = Object.entries(used).filter(([, value]) => text.includes(value));
    expect(leaked.map(([label]) => label)).toEqual([]);
    // Nor the password's or secrets' URL-encoded / base64 forms (Basic credentials).
    expect(text).not.toContain(basic(basicClient.clientId, basicClient.clientSecret!).slice(6));
  });
});
