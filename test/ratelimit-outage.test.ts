import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { createClient, createOrg, type TestClient } from './support/oauth.js';
import { createKey, freePort, introspect, OwnRedis, waitFor } from './ratelimit-support.js';

// Its own redis-server, stopped and restarted here: the machine's shared Redis is never touched.
let redis: OwnRedis;
let open: TestEnv;
let closed: TestEnv;
let rsOpen: TestClient;
let rsClosed: TestClient;
let keyOpen: string;
let keyClosed: string;

async function setup(env: TestEnv) {
  const orgId = await createOrg(env);
  const rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  const k = await createKey(env, orgId);
  await env.server.services.rateLimits.policies.setKeyLimits(k.apiKey.id, { write: { limit: 5, window: 60 } });
  return { rs, key: k.key };
}

beforeAll(async () => {
  redis = new OwnRedis(await freePort());
  await redis.start();
  open = await startTestServer({ REDIS_URL: redis.url });
  closed = await startTestServer({ REDIS_URL: redis.url, RATE_LIMIT_FAIL_MODE: 'closed' });
  ({ rs: rsOpen, key: keyOpen } = await setup(open));
  ({ rs: rsClosed, key: keyClosed } = await setup(closed));
});
afterAll(async () => {
  await open?.close();
  await closed?.close();
  await redis?.stop();
});

const write = (env: TestEnv, rs: TestClient, key: string) => introspect(env, rs, key, { ratelimit_category: 'write' });

describe('Redis stopped mid-test', () => {
  it('fails open with a per-process estimate (or closed when configured), logs once, reports it, and resumes', async () => {
    // Warm the introspection caches (caller client, key) while Redis is up; spend 2 of 5.
    for (let i = 0; i < 2; i++) expect((await write(open, rsOpen, keyOpen)).body.ratelimit.limited).toBeUndefined();
    expect((await write(closed, rsClosed, keyClosed)).body.ratelimit.limited).toBeUndefined();

    await redis.stop();
    const t0 = Date.now();
    // Fail open: still served, still limited by the local estimate (5 per process; it starts empty).
    const during: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await write(open, rsOpen, keyOpen);
      expect(r.status).toBe(200);
      expect(r.body.active).toBe(true);
      during.push(!r.body.ratelimit.limited);
    }
    expect(during).toEqual([true, true, true, true, true, false]);
    expect(Date.now() - t0).toBeLessThan(3000); // nobody waits on a dead Redis
    // Fail closed: refused while the limiter cannot count.
    const c = await write(closed, rsClosed, keyClosed);
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ active: true, ratelimit: { limited: true } });

    const ready = (await (await fetch(new URL('/readyz', open.url))).json()) as any;
    expect(ready.details.rate_limiter).toMatchObject({ store: 'redis', state: 'degraded', failMode: 'open', outages: 1 });
    const metrics = await open.metrics();
    expect(metrics).toMatch(/flowgate_ratelimit_store_up\{store="redis"\} 0/);
    expect(metrics).toMatch(/flowgate_ratelimit_degraded_checks_total\{mode="local"\} [1-9]/);
    const warnings = open.logs.lines.filter((l) => l.includes('rate limiter: Redis unreachable'));
    expect(warnings).toHaveLength(1);

    await redis.start(); // empty: --save "" and no AOF
    await waitFor('the limiter to use Redis again', async () => {
      const r = await write(open, rsOpen, keyOpen);
      return open.server.services.rateLimits.state().state === 'up' && r.body.ratelimit.limited === undefined;
    });
    expect(open.logs.lines.filter((l) => l.includes('shared limits resumed'))).toHaveLength(1);
    // Shared counting again: the probe above counted 1 of 5 in the fresh Redis.
    const after: boolean[] = [];
    for (let i = 0; i < 5; i++) after.push(!(await write(open, rsOpen, keyOpen)).body.ratelimit.limited);
    expect(after).toEqual([true, true, true, true, false]);
    await waitFor('fail-closed instance to recover', async () => !(await write(closed, rsClosed, keyClosed)).body.ratelimit.limited);
  });
});
