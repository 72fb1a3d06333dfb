import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startTestServer, TEST_REDIS_URL, type TestEnv } from './support/server.js';
import { createClient, createOrg, type TestClient } from './support/oauth.js';
import { createKey, introspect } from './ratelimit-support.js';
import { StallProxy } from './support/stall-proxy.js';

// A stalled store (connections open, nothing answers) must give quick, documented answers instead
// of hanging requests and probes: PostgreSQL through DATABASE_STATEMENT_TIMEOUT_MS and the bounded
// readiness check, Redis through ioredis' and the readiness check's bounds.
let pgProxy: StallProxy;
let redisProxy: StallProxy;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let env: TestEnv;
let rs: TestClient;
let orgId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  const target = new URL(db.url);
  pgProxy = new StallProxy(target.hostname, Number(target.port || 5432));
  await pgProxy.start();
  const r = new URL(TEST_REDIS_URL);
  redisProxy = new StallProxy(r.hostname, Number(r.port || 6379));
  await redisProxy.start();
  const proxied = new URL(db.url);
  proxied.port = String(pgProxy.port);
  env = await startTestServer({
    DATABASE_URL: proxied.toString(),
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    DATABASE_STATEMENT_TIMEOUT_MS: '1000',
    DATABASE_CONNECT_TIMEOUT_MS: '1000',
  });
  orgId = await createOrg(env);
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  // Warm the caller's client cache: the stall tests measure the credential's own look-up.
  const warm = await createKey(env, orgId);
  expect((await introspect(env, rs, warm.key)).body.active).toBe(true);
});
afterAll(async () => {
  pgProxy?.resume();
  redisProxy?.resume();
  await env?.close();
  await pgProxy?.stop();
  await redisProxy?.stop();
  await db?.drop();
});

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = Date.now();
  const value = await f();
  return { value, ms: Date.now() - t };
}

describe('store stalls', () => {
  it('PostgreSQL stalled: /readyz answers 503 within its bound, an uncached API key gets a quick 500, both recover', async () => {
    const { key } = await createKey(env, orgId);
    pgProxy.stall();
    try {
      const ready = await timed(() => fetch(`${env.url}/readyz`));
      expect(ready.value.status).toBe(503);
      expect(await ready.value.json()).toMatchObject({ status: 'unavailable', checks: { database: 'down' } });
      expect(ready.ms).toBeLessThan(3500);
      const r = await timed(() => introspect(env, rs, key));
      expect(r.value.status).toBe(500);
      expect(r.value.body).toEqual({ error: 'server_error', error_description: 'internal error' });
      // statement timeout 1 s + the client's 1 s margin, not the 40 s and more of an unbounded wait.
      expect(r.ms).toBeLessThan(5000);
    } finally {
      pgProxy.resume();
    }
    await expect.poll(async () => (await fetch(`${env.url}/readyz`)).status, { timeout: 15_000, interval: 250 }).toBe(200);
    expect((await introspect(env, rs, key)).body.active).toBe(true);
  }, 60_000);

  it('Redis stalled: /readyz says degraded (200) quickly and API keys keep working', async () => {
    const { key } = await createKey(env, orgId);
    redisProxy.stall();
    try {
      const ready = await timed(() => fetch(`${env.url}/readyz`));
      expect(ready.ms).toBeLessThan(3500);
      expect(ready.value.status).toBe(200);
      expect(await ready.value.json()).toMatchObject({ status: 'degraded', checks: { database: 'up', redis: 'down' }, serves: { api_keys: true, oauth: false } });
      const r = await timed(() => introspect(env, rs, key));
      expect(r.value.status).toBe(200);
      expect(r.value.body.active).toBe(true);
      expect(r.ms).toBeLessThan(2000);
    } finally {
      redisProxy.resume();
    }
    await expect.poll(async () => (await (await fetch(`${env.url}/readyz`)).json()).status, { timeout: 15_000, interval: 250 }).toBe('ready');
  }, 60_000);
});
