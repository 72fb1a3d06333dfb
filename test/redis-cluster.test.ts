import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisClusterFixture } from './support/redis-topologies.js';
import { startTestServer, useRedis } from './support/server.js';
import { basicAuth, createClient, createOrg } from './support/oauth.js';
import { RedisKeyValueStore } from '../src/storage/redis-kv.js';

// The API-key, introspection (opaque, JWT, API key), rate-limit, revocation and sign-in/consent
// suites, unchanged, with Flowgate on a 3-master Redis Cluster of its own (REDIS_CLUSTER_NODES,
// REDIS_URL unset). On a Cluster, plain clients fail with MOVED and multi-key commands with CROSSSLOT.
let cluster: RedisClusterFixture;
beforeAll(async () => {
  cluster = await RedisClusterFixture.start({ masters: 3 });
  // A rate-limit check slower than RATE_LIMIT_TIMEOUT_MS falls back to the local estimate; on a
  // 2-core machine running other suites a check can wait that long, and the exactness tests would
  // count the fallback. The production default stays 250 ms.
  useRedis({ ...cluster.env(), RATE_LIMIT_TIMEOUT_MS: '1500' });
});
afterAll(async () => cluster?.stop());

describe('on Redis Cluster: introspection', async () => {
  await import('./introspection.test.js');
});
describe('on Redis Cluster: API-key revocation', async () => {
  await import('./apikeys-revocation.test.js');
});
describe('on Redis Cluster: rate limits', async () => {
  await import('./ratelimit-limits.test.js');
});
describe('on Redis Cluster: sign-in and consent', async () => {
  await import('./oauth-code-flow.test.js');
});

describe('Flowgate on Redis Cluster', () => {
  it('uses the Cluster client, spreads its keys over the masters and serves a token round trip', async () => {
    const env = await startTestServer();
    try {
      const kv = env.server.services.kv as RedisKeyValueStore;
      expect(kv.topology.mode).toBe('cluster');
      const orgId = await createOrg(env);
      const app = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
      const tokens: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await fetch(new URL('/token', env.url), {
          method: 'POST',
          headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials',
        });
        expect(res.status).toBe(200);
        tokens.push(((await res.json()) as { access_token: string }).access_token);
      }
      // Every master holds some of this server's keys (20 tokens hash to slots all over).
      const counts = await Promise.all(
        cluster.nodes.map(async (_, i) => {
          const a = cluster.admin(i);
          try {
            return (await a.keys(`${env.config.redisPrefix}*`)).length;
          } finally {
            a.disconnect();
          }
        }),
      );
      expect(counts.every((n) => n > 0)).toBe(true);
      const r = await fetch(new URL('/token/introspection', env.url), {
        method: 'POST',
        headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: tokens[7] }).toString(),
      });
      expect(await r.json()).toMatchObject({ active: true, client_id: app.clientId });
    } finally {
      await env.close();
    }
  });
});
