/**
 * Revocation that cannot go stale: a change announced while an instance's invalidation subscriber was
 * disconnected is lost to it, so every (re)subscription flushes the in-process caches. Runs on its own
 * redis-server: killing subscriber connections on the shared Redis would disturb other test files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startTestServer, type TestEnv } from './support/server.js';
import { createClient, createOrg, type TestClient } from './support/oauth.js';
import { createKey, freePort, introspect, OwnRedis } from './ratelimit-support.js';
import type { RunningServer } from '../src/server.js';

let redis: OwnRedis;
let env: TestEnv;
let b: RunningServer;
let rs: TestClient;
let orgId: string;

beforeAll(async () => {
  redis = new OwnRedis(await freePort());
  await redis.start();
  env = await startTestServer({ REDIS_URL: redis.url });
  b = await env.startInstance();
  orgId = await createOrg(env);
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
});
afterAll(async () => {
  await env?.close();
  await redis?.stop();
});

describe('after a lost invalidation message', () => {
  it('another instance stops accepting a revoked key within a second of its subscriber coming back', async () => {
    const { key, apiKey } = await createKey(env, orgId, { preset: 'read_only' });
    expect((await introspect(env, rs, key, {}, b.url)).body.active).toBe(true); // cached on B now
    const admin = new Redis(redis.url);
    try {
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    } finally {
      admin.disconnect();
    }
    // The revocation is written where no message announces it: exactly what a lost message looks like.
    await env.server.services.ds.query(`UPDATE api_keys SET revoked_at = now() WHERE id = $1`, [apiKey.id]);
    const deadline = Date.now() + 1000;
    let active = true;
    while (active && Date.now() < deadline) {
      active = (await introspect(env, rs, key, {}, b.url)).body.active;
      if (active) await new Promise((r) => setTimeout(r, 25));
    }
    expect(active).toBe(false);
    expect(env.logs.text).toContain('invalidation channel resubscribed');
  });
});
