import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { startTestServer, type TestEnv } from './support/server.js';

let env: TestEnv;
let noRedis: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
  // Port 1 on loopback: nothing listens, so every Redis connection attempt is refused.
  noRedis = await startTestServer({ REDIS_URL: 'redis://127.0.0.1:1' });
});
afterAll(async () => {
  await env?.close();
  await noRedis?.close();
});

describe('health endpoints', () => {
  it('/healthz answers 200 while the process is alive', async () => {
    const r = await request(env.url).get('/healthz').expect(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 when PostgreSQL and Redis are both up', async () => {
    const r = await request(env.url).get('/readyz').expect(200);
    expect(r.body).toMatchObject({ status: 'ready', checks: { database: 'up', redis: 'up' } });
    expect(Object.keys(r.body.checks).sort()).toEqual(['database', 'redis']);
  });

  it('/readyz answers 200 degraded naming Redis, quickly, when Redis is unreachable (API keys still served)', async () => {
    // Every instance shares the Redis: a 503 here would take them all out of the balancer while API
    // keys (PostgreSQL) still work.
    const started = Date.now();
    const r = await request(noRedis.url).get('/readyz').expect(200);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(r.body).toMatchObject({ status: 'degraded', checks: { database: 'up', redis: 'down' }, serves: { api_keys: true, oauth: false } });
    expect(Object.keys(r.body.checks).sort()).toEqual(['database', 'redis']);
    // The process itself is alive, so liveness still passes (a restart would not fix Redis).
    await request(noRedis.url).get('/healthz').expect(200);
  });

  it('/readyz answers 503 naming the database when PostgreSQL is gone', async () => {
    // Closing the pool is what a lost database looks like from inside the process.
    const other = await env.startInstance();
    await other.services.ds.destroy();
    const r = await request(other.url).get('/readyz').expect(503);
    expect(r.body.checks).toEqual({ database: 'down', redis: 'up' });
    expect(r.body).toMatchObject({ status: 'unavailable', serves: { api_keys: false, oauth: false } });
    await other.close();
  });
});
