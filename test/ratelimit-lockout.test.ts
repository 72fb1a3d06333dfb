import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, Browser, createClient, createUser, openLoginPage, parseForms, type TestClient, type TestUser } from './support/oauth.js';

/**
 * Nobody can lock someone else out: failed client authentications at /token count against the
 * caller's address (and address + client id), never against the client it names; failed sign-ins
 * count per account and per address, successful ones not at all.
 */
let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer({
    TRUST_PROXY: 'true',
    // Counting is under test here, not the outage mode: a check slowed by a loaded machine must not
    // count as Redis being away (which fails open with a per-process estimate).
    RATE_LIMIT_TIMEOUT_MS: '5000',
    RATE_LIMITS: JSON.stringify({
      token: { limit: 5, window: '1m' },
      tokenFailuresClient: { limit: 10, window: '1m' },
      tokenFailuresIp: { limit: 25, window: '5m' },
      loginIp: { limit: 6, window: '5m' },
      loginAccount: { limit: 3, window: '1m' },
    }),
  });
});
afterAll(async () => env?.close());

const token = (c: TestClient, secret: string, ip: string) =>
  fetch(new URL('/token', env.url), {
    method: 'POST',
    headers: { authorization: basicAuth(c.clientId, secret), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
    body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown>, retryAfter: r.headers.get('retry-after') }));

const service = () => createClient(env, { grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read' });

describe('/token: failed client authentication', () => {
  it('300 wrong secrets naming a victim client from one address leave the victim working from its own', async () => {
    const victim = await service();
    const statuses: number[] = [];
    for (let i = 0; i < 300; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => token(victim, 'not the secret', '192.0.2.66')));
      statuses.push(...batch.map((r) => r.status));
    }
    // The attacker is slowed down at its own address (RFC 8628 slow_down with Retry-After)...
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(290);
    const refused = await token(victim, 'not the secret', '192.0.2.66');
    expect(refused).toMatchObject({ status: 429, body: { error: 'slow_down' } });
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    // ...and the real client, from its own address, is not.
    const real = await token(victim, victim.clientSecret!, '198.51.100.7');
    expect(real.status).toBe(200);
    expect(real.body.access_token).toEqual(expect.any(String));
  });

  it('an address that fails for many clients is slowed down for all of them', async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, service));
    let n = 0;
    for (const c of clients) for (let i = 0; i < 7; i++) if ((await token(c, 'guess', '192.0.2.99')).status === 401) n++;
    expect(n).toBe(25);
    const other = await service();
    expect((await token(other, 'guess', '192.0.2.99')).status).toBe(429);
    // Elsewhere the same clients are fine.
    expect((await token(other, other.clientSecret!, '198.51.100.8')).status).toBe(200);
  });

  it('a client’s own budget counts only the requests it authenticated', async () => {
    const c = await service();
    for (let i = 0; i < 8; i++) expect((await token(c, 'wrong', '192.0.2.120')).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await token(c, c.clientSecret!, '198.51.100.9')).status).toBe(200);
    expect(await token(c, c.clientSecret!, '198.51.100.9')).toMatchObject({ status: 429, body: { error: 'slow_down' } });
  });
});

describe('/token: a busy client with a proven secret', () => {
  let busy: TestEnv;
  beforeAll(async () => {
    busy = await startTestServer({
      TRUST_PROXY: 'true',
      RATE_LIMIT_TIMEOUT_MS: '5000',
      RATE_LIMITS: JSON.stringify({ token: { limit: 1000, window: '1m' }, tokenFailuresClient: { limit: 10, window: '1m' }, tokenFailuresIp: { limit: 25, window: '5m' } }),
    });
  });
  afterAll(async () => busy?.close());

  it('may send more requests at once than the failure budgets hold; its failures still count', async () => {
    // Thirty keep-alive connections opened first, so that the burst reaches the server at once.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 30 });
    const request = (method: string, path: string, headers: Record<string, string> = {}, body = '') =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(new URL(path, busy.url), { method, agent, headers }, (res) => res.resume().on('end', () => resolve(res.statusCode!)));
        req.on('error', reject);
        req.end(body);
      });
    await Promise.all(Array.from({ length: 30 }, () => request('GET', '/healthz')));
    const send = (c: TestClient, secret: string) =>
      request('POST', '/token', { authorization: basicAuth(c.clientId, secret), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '198.51.100.50' }, 'grant_type=client_credentials');
    // A request of unknown outcome holds a place in the failure budgets while it runs (10 for this
    // address and client); a secret that authenticated lately is not a guess and holds none.
    const c = await createClient(busy, { grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read' });
    expect(await send(c, c.clientSecret!)).toBe(200);
    expect(await Promise.all(Array.from({ length: 30 }, () => send(c, c.clientSecret!)))).toEqual(Array(30).fill(200));
    // Wrong secrets from that address are still counted, and its budget still ends the guessing.
    const guesses = [];
    for (let i = 0; i < 12; i++) guesses.push(await send(c, 'guess'));
    expect(guesses.filter((s) => s === 401)).toHaveLength(10);
    expect(guesses.slice(10)).toEqual([429, 429]);
    agent.destroy();
  });
});

describe('sign-in forms count failures, not successes', () => {
  async function oauthSignIn(client: TestClient, user: TestUser, password: string, ip: string) {
    const { browser, form } = await openLoginPage(env, client);
    const res = await browser.fetch(new URL(form.action, env.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
      body: new URLSearchParams({ csrf: form.fields.csrf, email: user.email, password }).toString(),
    });
    return res.status;
  }

  async function dashboardSignIn(user: TestUser, password: string, ip: string) {
    const browser = new Browser();
    const page = await browser.get(new URL('/dashboard/login', env.url));
    const form = parseForms(await page.text()).find((f) => 'password' in f.fields)!;
    const res = await browser.fetch(new URL(form.action, env.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
      body: new URLSearchParams({ csrf: form.fields.csrf, email: user.email, password }).toString(),
    });
    return res.status;
  }

  it('an office behind one address signs in many times without being locked out', async () => {
    const client = await createClient(env);
    const staff = await Promise.all(Array.from({ length: 4 }, () => createUser(env)));
    for (let round = 0; round < 1; round++) {
      for (const u of staff) {
        expect(await oauthSignIn(client, u, u.password, '203.0.113.10')).toBe(303);
        expect(await dashboardSignIn(u, u.password, '203.0.113.10')).toBe(302);
      }
    }
  });

  it('failures from one address lock that address, not the accounts for everyone else', async () => {
    const client = await createClient(env);
    const users = await Promise.all(Array.from({ length: 3 }, () => createUser(env)));
    for (const u of users) for (let i = 0; i < 2; i++) expect(await dashboardSignIn(u, 'wrong password!', '203.0.113.50')).toBe(401);
    // Six failures: the address waits, right password or not...
    expect(await oauthSignIn(client, users[0], users[0].password, '203.0.113.50')).toBe(429);
    // ...while the same accounts sign in from elsewhere (two failures each, under the account limit).
    for (const u of users) expect(await oauthSignIn(client, u, u.password, '203.0.113.51')).toBe(303);
  });
});
