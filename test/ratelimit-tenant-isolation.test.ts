import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_REDIS_URL, type TestEnv } from './support/server.js';
import { basicAuth, createClient, createOrg, type TestClient } from './support/oauth.js';
import { createKey, introspect } from './ratelimit-support.js';
import { RedisLimiter } from '../src/ratelimit/redis-limiter.js';
import { LimitCheckError } from '../src/ratelimit/types.js';

// One tenant can neither switch limiting off for everyone (a policy the limiter cannot evaluate) nor
// spend another tenant's budget (the per-IP webhook bucket).
let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

async function api(method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(new URL(path, env.url), {
    method,
    headers: { 'x-api-key': key, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function check(rs: TestClient, ip: string) {
  const res = await fetch(new URL('/ratelimit/check', env.url), {
    method: 'POST',
    headers: { authorization: basicAuth(rs.clientId, rs.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ category: 'webhook', key: ip }).toString(),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as any).ratelimit;
}

const resourceServer = (orgId: string) => createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });

describe('rate-limit policies are bounded on input', () => {
  it.each([
    [{ write: { limit: 5, window: 1e300 } }, /window must be at most 30 days/],
    [{ write: { limit: 5, window: '99999999999999999999d' } }, /window must be at most 30 days/],
    [{ all: { limit: 5, window: '31d' } }, /window must be at most 30 days/],
    [{ write: { limit: 1e300, window: 60 } }, /limit must be (at most 1000000|a whole number)/],
    [{ write: { limit: 1_000_001, window: 60 } }, /limit must be at most 1000000/],
  ])('refuses %j for an organization and for a key', async (limits, message) => {
    const orgId = await createOrg(env);
    const { key, apiKey } = await createKey(env, orgId);
    const org = await api('PUT', '/api/v1/rate-limits', key, { limits });
    expect(org.status).toBe(400);
    expect(org.body).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
    expect(org.body.error.message).toMatch(message);
    const forKey = await api('PUT', `/api/v1/rate-limits/api-keys/${apiKey.id}`, key, { limits });
    expect(forKey.status).toBe(400);
    expect(forKey.body.error.message).toMatch(message);
    // The largest allowed values are accepted.
    expect((await api('PUT', '/api/v1/rate-limits', key, { limits: { write: { limit: 1_000_000, window: '30d' } } })).status).toBe(200);
  });

  it('a hand-stored policy beyond the bounds is ignored: the limiter stays up for every tenant', async () => {
    const s = env.server.services;
    const evil = await createOrg(env);
    const other = await createOrg(env);
    const evilKey = await createKey(env, evil);
    const otherKey = await createKey(env, other);
    const rsEvil = await resourceServer(evil);
    const rsOther = await resourceServer(other);
    await s.ds.query(`UPDATE organizations SET settings = jsonb_set(settings, '{rateLimits}', $2::jsonb) WHERE id = $1`, [evil, JSON.stringify({ write: { limit: 5, window: 1e300 } })]);
    await s.rateLimits.policies.setOrgLimits(other, { write: { limit: 2, window: 60 } });
    const a = await introspect(env, rsEvil, evilKey.key, { ratelimit_category: 'write' });
    expect(a.status).toBe(200);
    expect(s.rateLimits.state()).toMatchObject({ state: 'up' });
    // The other tenant is still counted in Redis: its third request is refused, not waved through.
    for (let i = 0; i < 2; i++) expect((await introspect(env, rsOther, otherKey.key, { ratelimit_category: 'write' })).body.ratelimit.limited).toBeUndefined();
    expect((await introspect(env, rsOther, otherKey.key, { ratelimit_category: 'write' })).body.ratelimit).toMatchObject({ limited: true });
    expect(s.rateLimits.state()).toMatchObject({ state: 'up', outages: 0 });
  });
});

describe('a limit Redis cannot evaluate fails its own request only', () => {
  let client: Redis;
  beforeAll(() => {
    client = new Redis(TEST_REDIS_URL, { keyPrefix: `fgtest:rl-eval:${randomBytes(4).toString('hex')}:` });
  });
  afterAll(async () => client?.quit());

  it.each(['open', 'closed'] as const)('fail mode %s: the limiter does not enter its outage mode, and other keys are still decided by Redis', async (failMode) => {
    const limiter = new RedisLimiter(client, { failMode, timeoutMs: 2000 });
    await expect(limiter.check('evil', { limit: 5, window: 1e300 })).rejects.toBeInstanceOf(LimitCheckError);
    await expect(limiter.check('evil', { limit: 1e300, window: 60 })).rejects.toBeInstanceOf(LimitCheckError);
    expect(limiter.state()).toMatchObject({ state: 'up', outages: 0, failedChecks: 0 });
    const ok = await limiter.check('fine', { limit: 1, window: 60 });
    expect(ok).toMatchObject({ allowed: true, source: 'redis' });
    expect(await limiter.check('fine', { limit: 1, window: 60 })).toMatchObject({ allowed: false, source: 'redis' });
    // A command error Redis itself reports (the key holds another type) is the same: this request only.
    await client.set('wrongtype', 'x');
    await expect(limiter.check('wrongtype', { limit: 5, window: 60 })).rejects.toBeInstanceOf(LimitCheckError);
    expect(limiter.state()).toMatchObject({ state: 'up', outages: 0 });
    await client.del('fine', 'wrongtype');
    limiter.close();
  });
});

describe('the per-IP webhook budget belongs to one tenant and one resource server', () => {
  it('one organization exhausting an address does not spend another organization’s budget for it', async () => {
    const s = env.server.services;
    const orgA = await createOrg(env);
    const orgB = await createOrg(env);
    await s.rateLimits.policies.setOrgLimits(orgA, { webhook: { limit: 3, window: 60 } });
    await s.rateLimits.policies.setOrgLimits(orgB, { webhook: { limit: 3, window: 60 } });
    const rsA = await resourceServer(orgA);
    const rsA2 = await resourceServer(orgA);
    const rsB = await resourceServer(orgB);
    const ip = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    for (let i = 0; i < 3; i++) expect((await check(rsA, ip)).limited).toBeUndefined();
    expect(await check(rsA, ip)).toMatchObject({ limited: true });
    // Another tenant, the same address: its own full budget.
    expect(await check(rsB, ip)).toMatchObject({ limit: 3, remaining: 2 });
    // Another resource server of the same tenant ingests its own webhooks: its own budget too.
    expect(await check(rsA2, ip)).toMatchObject({ limit: 3, remaining: 2 });
  });

  it('introspection’s ratelimit_ip is per tenant too', async () => {
    const s = env.server.services;
    const orgA = await createOrg(env);
    const orgB = await createOrg(env);
    await s.rateLimits.policies.setOrgLimits(orgA, { webhook: { limit: 2, window: 60 } });
    await s.rateLimits.policies.setOrgLimits(orgB, { webhook: { limit: 2, window: 60 } });
    const [keyA, keyB] = [await createKey(env, orgA), await createKey(env, orgB)];
    const [rsA, rsB] = [await resourceServer(orgA), await resourceServer(orgB)];
    const ip = `198.51.100.${Math.floor(Math.random() * 200) + 1}`;
    const hit = (rs: TestClient, key: string) => introspect(env, rs, key, { ratelimit_category: 'webhook', ratelimit_ip: ip });
    await hit(rsA, keyA.key);
    await hit(rsA, keyA.key);
    expect((await hit(rsA, keyA.key)).body.ratelimit).toMatchObject({ limited: true });
    expect((await hit(rsB, keyB.key)).body.ratelimit).toMatchObject({ remaining: 1 });
  });
});
