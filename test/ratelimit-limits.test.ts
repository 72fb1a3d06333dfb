import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, createClient, createOrg, type TestClient } from './support/oauth.js';
import { createKey, introspect } from './ratelimit-support.js';
import { buildWorkflowService } from '../examples/workflow-service/app.js';
import type { RedisKeyValueStore } from '../src/storage/redis-kv.js';
import { Cluster } from 'ioredis';

let env: TestEnv;
let rs: TestClient;
let orgId: string;
const T0 = 1_800_000_000_000; // a controlled clock, ms

beforeAll(async () => {
  env = await startTestServer({
    // Counting is under test here, not the outage mode: a check slowed by a loaded machine must not
    // count as Redis being away (which fails open with a per-process estimate).
    RATE_LIMIT_TIMEOUT_MS: '5000',
    RATE_LIMITS: JSON.stringify({ token: { limit: 3, window: 60 }, management: { limit: 4, window: '1m' } }),
  });
  orgId = await createOrg(env);
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  // Many keys in one organization: the enterprise plan has no key cap.
  await env.server.services.ds.query(`UPDATE organizations SET plan = 'enterprise' WHERE id = $1`, [orgId]);
});
afterAll(async () => env?.close());

const limits = () => env.server.services.rateLimits;

async function keyWith(override: Record<string, unknown> | null) {
  const k = await createKey(env, orgId);
  if (override) await limits().policies.setKeyLimits(k.apiKey.id, override);
  return { key: k.key as string, id: (k.apiKey.id) as string };
}

describe('exactness with a controlled clock (sliding log)', () => {
  it('allows N, refuses the N+1th, slides (no fixed-bucket reset), and says when to retry', async () => {
    const { key } = await keyWith({ write: { limit: 5, window: 60 } });
    let now = T0;
    limits().clock = () => now;
    try {
      const w = () => introspect(env, rs, key, { ratelimit_category: 'write' }).then((r) => r.body);
      const remaining: number[] = [];
      for (let i = 0; i < 3; i++) remaining.push((await w()).ratelimit.remaining);
      now = T0 + 30_000;
      for (let i = 0; i < 2; i++) remaining.push((await w()).ratelimit.remaining);
      expect(remaining).toEqual([4, 3, 2, 1, 0]);
      now = T0 + 31_000;
      const sixth = await w();
      expect(sixth.active).toBe(true); // valid, just spent
      expect(sixth.ratelimit).toMatchObject({ limited: true, limit: 5, remaining: 0, window: 60, retry_after: 29, reset: Math.ceil((T0 + 60_000) / 1000) });
      // One millisecond before the first three leave the window: still refused.
      now = T0 + 59_999;
      expect((await w()).ratelimit.limited).toBe(true);
      // At T0+60s the first three have left; the two from T0+30s still count: 3 more, not 5.
      now = T0 + 60_000;
      const after: boolean[] = [];
      for (let i = 0; i < 4; i++) after.push(!(await w()).ratelimit.limited);
      expect(after).toEqual([true, true, true, false]);
      const last = await w();
      expect(last.ratelimit.retry_after).toBe(30); // the T0+30s requests leave at T0+90s
    } finally {
      limits().clock = undefined;
    }
  });

  it('maps method and route to read / write / execute, and leaves answers without a category alone', async () => {
    const { key } = await keyWith({ read: { limit: 7, window: 60 }, write: { limit: 8, window: 60 }, execute: { limit: 9, window: 60 } });
    const cat = async (method: string, route: string) => (await introspect(env, rs, key, { ratelimit_method: method, ratelimit_route: route })).body.ratelimit;
    expect(await cat('GET', '/api/v1/workflows')).toMatchObject({ policy: 'read', limit: 7 });
    expect(await cat('DELETE', '/api/v1/connections/c1')).toMatchObject({ policy: 'write', limit: 8 });
    expect(await cat('POST', '/api/v1/workflows/:id/run')).toMatchObject({ policy: 'execute', limit: 9 });
    expect(await cat('POST', '/developer/api/workflows/wf1/trigger/sync')).toMatchObject({ policy: 'execute', limit: 9 });
    expect((await introspect(env, rs, key)).body.ratelimit).toBeUndefined();
  });

  it('takes defaults from the plan, lets the organization and then the key override them; hourly style works', async () => {
    const other = await createOrg(env);
    const k = await createKey(env, other);
    // A platform-wide resource server: it sees every organization's keys.
    const platform = await createClient(env, { orgId: null, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    const read = async (token: string) => (await introspect(env, platform, token, { ratelimit_category: 'read' })).body.ratelimit;
    expect(await read(k.key)).toMatchObject({ limit: 1000, window: 60 }); // the free plan's read limit
    await limits().policies.setOrgLimits(other, { all: { limit: 1000, window: '1h' } }); // one shared hourly budget
    expect(await read(k.key)).toMatchObject({ policy: 'read', limit: 1000, window: 3600 });
    await limits().policies.setKeyLimits(k.apiKey.id, { read: { limit: 50, window: 60 } });
    expect(await read(k.key)).toMatchObject({ limit: 50, window: 60 });
    await expect(limits().policies.setKeyLimits(k.apiKey.id, { read: { limit: 5, window: 0 } })).rejects.toThrow(/window/);
    await expect(limits().policies.setOrgLimits(other, { write: { limit: -1, window: 60 } })).rejects.toThrow(/negative/);
  });

  it('does not let one tenant spend another tenant’s budget', async () => {
    const a = await keyWith({ write: { limit: 2, window: 60 } });
    const b = await keyWith({ write: { limit: 2, window: 60 } });
    for (let i = 0; i < 3; i++) await introspect(env, rs, a.key, { ratelimit_category: 'write' });
    expect((await introspect(env, rs, a.key, { ratelimit_category: 'write' })).body.ratelimit.limited).toBe(true);
    expect((await introspect(env, rs, b.key, { ratelimit_category: 'write' })).body.ratelimit).toMatchObject({ remaining: 1 });
    expect((await introspect(env, rs, a.key, { ratelimit_category: 'read' })).body.ratelimit.limited).toBeUndefined();
  });
});

describe('across instances and under concurrency (real Redis clock)', () => {
  it('two Flowgate instances share one limit: 150 requests split across them allow exactly 100', async () => {
    const { key } = await keyWith({ write: { limit: 100, window: 60 } });
    const second = await env.startInstance();
    let allowed = 0;
    for (let i = 0; i < 150; i++) {
      const r = await introspect(env, rs, key, { ratelimit_category: 'write' }, i % 2 ? second.url : env.url);
      if (!r.body.ratelimit.limited) allowed++;
    }
    expect(allowed).toBe(100);
  });

  it('a spent budget is refused without asking Redis until a request leaves the window, on every instance; raising the limit ends it at once', async () => {
    const { key, id } = await keyWith({ write: { limit: 3, window: 2 } });
    const second = await env.startInstance();
    const spentHits = (s: { caches: { stats(): { name: string; hits: number }[] } }) => s.caches.stats().find((c) => c.name === 'rate-limit-spent')!.hits;
    const w = (url = env.url) => introspect(env, rs, key, { ratelimit_category: 'write' }, url).then((r) => r.body.ratelimit);
    for (let i = 0; i < 3; i++) expect((await w()).limited).toBeUndefined();
    const before = spentHits(env.server.services);
    const refused = [await w(), await w(), await w()];
    expect(refused.every((r) => r.limited && r.remaining === 0 && r.retry_after >= 1)).toBe(true);
    // The first refusal asked Redis; the next two were answered from what it said.
    expect(spentHits(env.server.services) - before).toBe(2);
    // Another instance asks Redis once, and is refused as well.
    expect((await w(second.url)).limited).toBe(true);
    // When the first requests leave the two-second window, both admit again.
    await new Promise((r) => setTimeout(r, 2100));
    expect((await w()).limited).toBeUndefined();
    for (let i = 0; i < 2; i++) await w(second.url);
    expect((await w(second.url)).limited).toBe(true);
    expect((await w()).limited).toBe(true);
    // Raising the key's limit is seen at once, where the refusal was remembered too.
    await limits().policies.setKeyLimits(id, { write: { limit: 10, window: 2 } });
    await new Promise((r) => setTimeout(r, 200));
    expect((await w()).limited).toBeUndefined();
    expect((await w(second.url)).limited).toBeUndefined();
  });

  it('200 parallel requests at a limit of 100 allow exactly 100', async () => {
    const { key } = await keyWith({ execute: { limit: 100, window: 60 } });
    const results = await Promise.all(Array.from({ length: 200 }, () => introspect(env, rs, key, { ratelimit_category: 'execute' })));
    expect(results.every((r) => r.status === 200 && r.body.active === true)).toBe(true);
    expect(results.filter((r) => !r.body.ratelimit.limited).length).toBe(100);
    expect(new Set(results.filter((r) => !r.body.ratelimit.limited).map((r) => r.body.ratelimit.remaining)).size).toBe(100);
  });
});

describe('the SDK in a workflow service', () => {
  it('sets the headers on every authenticated response and answers 429 RATE_LIMITED with Retry-After', async () => {
    const { key } = await keyWith({ write: { limit: 3, window: 60 }, read: { limit: 10, window: 3600 } });
    const { app } = buildWorkflowService({ issuer: env.url, clientId: rs.clientId, clientSecret: rs.clientSecret!, rateLimit: true });
    const server = http.createServer(app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const post = () =>
        fetch(`${base}/api/v1/workflows`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'wf', definition: {} }) });
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await post();
        expect(r.status).toBe(201);
        seen.push(r.headers.get('x-ratelimit-remaining')!);
        expect(r.headers.get('x-ratelimit-limit')).toBe('3');
        expect(r.headers.get('ratelimit-policy')).toBe('"write";q=3;w=60');
        expect(r.headers.get('ratelimit')).toMatch(/^"write";r=\d;t=(59|60)$/);
        expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 + 55);
      }
      expect(seen).toEqual(['2', '1', '0']);
      const refused = await post();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
      expect(await refused.json()).toEqual({ success: false, error: { code: 'RATE_LIMITED', message: 'Rate limit exceeded. Limit: 3 requests per minute.' } });
      const get = await fetch(`${base}/api/v1/workflows`, { headers: { 'x-api-key': key } });
      expect(get.status).toBe(200);
      expect(get.headers.get('ratelimit-policy')).toBe('"read";q=10;w=3600');
      expect(get.headers.get('x-ratelimit-remaining')).toBe('9');
    } finally {
      server.close();
    }
  });
});

describe("Flowgate's own endpoints", () => {
  it('limits the token endpoint per client, RFC 6749-style (429 slow_down, Retry-After)', async () => {
    const c = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [] });
    const other = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [] });
    const token = (cl: TestClient) =>
      fetch(new URL('/token', env.url), {
        method: 'POST',
        headers: { authorization: basicAuth(cl.clientId, cl.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
    const stored = async () => {
      // The client's tokens in Redis: a refused request must leave none behind.
      const kv = env.server.services.kv as RedisKeyValueStore;
      // KEYS answers for one node: on a Cluster, ask every master.
      const nodes = kv.client instanceof Cluster ? kv.client.nodes('master') : [kv.client];
      const keys = (await Promise.all(nodes.map((n) => n.keys(`${env.config.redisPrefix}oidc:ClientCredentials:*`)))).flat();
      const values = await Promise.all(keys.map((k) => kv.get(k.slice(env.config.redisPrefix.length))));
      return values.filter((v) => v && JSON.parse(v).clientId === c.clientId).length;
    };
    for (let i = 0; i < 3; i++) expect((await token(c)).status).toBe(200);
    expect(await stored()).toBe(3);
    const r = await token(c);
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await r.json()).toMatchObject({ error: 'slow_down', error_description: 'Rate limit exceeded. Limit: 3 requests per minute.' });
    expect(await stored()).toBe(3);
    expect((await token(other)).status).toBe(200);
  });

  it('a client’s budget holds under parallel requests, with a proven secret too (the check read after the provider)', async () => {
    const c = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [] });
    const token = (resource?: string) =>
      fetch(new URL('/token', env.url), {
        method: 'POST',
        headers: { authorization: basicAuth(c.clientId, c.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', ...(resource && { resource }) }).toString(),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    expect((await token()).status).toBe(200); // the secret is proven from here on
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => token(i % 2 ? env.config.apiAudience : undefined)));
    expect(burst.filter((b) => b.status === 200)).toHaveLength(2);
    expect(burst.filter((b) => b.status === 429 && b.body.error === 'slow_down')).toHaveLength(10);
  });

  it('limits the management API per credential, with headers, in the one JSON error shape', async () => {
    const { key } = await keyWith(null);
    const whoami = () => fetch(new URL('/api/v1/auth/whoami', env.url), { headers: { 'x-api-key': key } });
    const remaining: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await whoami();
      expect(r.status).toBe(200);
      expect(r.headers.get('x-ratelimit-limit')).toBe('4');
      remaining.push(r.headers.get('x-ratelimit-remaining')!);
    }
    expect(remaining).toEqual(['3', '2', '1', '0']);
    const r = await whoami();
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBeTruthy();
    expect(await r.json()).toMatchObject({ success: false, error: { code: 'RATE_LIMITED', message: 'Rate limit exceeded. Limit: 4 requests per minute.' } });
  });

  it('exposes the limiter in /readyz details and /metrics', async () => {
    const ready = (await (await fetch(new URL('/readyz', env.url))).json()) as any;
    expect(ready.details.rate_limiter).toMatchObject({ store: 'redis', state: 'up', failMode: 'open' });
    const text = await env.metrics();
    expect(text).toMatch(/flowgate_ratelimit_store_up\{store="redis"\} 1/);
    expect(text).toMatch(/flowgate_ratelimit_checks_total\{policy="write",result="limited"\} \d+/);
  });
});
