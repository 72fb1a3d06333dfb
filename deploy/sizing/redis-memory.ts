/**
 * What Redis holds per live token, per rate-limit window and per cached answer, measured on a Redis
 * of its own (MEMORY USAGE per key, and used_memory growth per item), with a real Flowgate issuing
 * the tokens. Prints one JSON document; docs/operations.md quotes it.
 *
 *   node --expose-gc --import tsx deploy/sizing/redis-memory.ts
 *
 * Needs PostgreSQL as the tests do (TEST_PG_URL) and redis-server on the PATH.
 */
import { randomBytes } from 'node:crypto';
import type { Resolution } from '../../src/credentials/types.js';
import { RedisLimiter } from '../../src/ratelimit/redis-limiter.js';
import { Cache } from '../../src/storage/cache.js';
import type { RedisKeyValueStore } from '../../src/storage/redis-kv.js';
import { authorize, basicAuth, createClient, createOrg, createUser } from '../../test/support/oauth.js';
import { StandaloneRedis } from '../../test/support/redis-topologies.js';
import { startTestServer } from '../../test/support/server.js';

const CC_TOKENS = Number(process.env.CC_TOKENS ?? 5000);
const FLOWS = Number(process.env.FLOWS ?? 40);

const redis = await StandaloneRedis.start();
const env = await startTestServer({ REDIS_URL: redis.url(), LOG_LEVEL: 'warn', RATE_LIMITS: JSON.stringify({ token: { limit: 1_000_000, window: 60 }, loginIp: { limit: 1_000_000, window: 60 } }) });
const admin = redis.admin();
const prefix = env.config.redisPrefix;
const kv = env.server.services.kv as RedisKeyValueStore;

async function usedMemory(): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
}

/** Every key of this server grouped by kind, with the mean MEMORY USAGE of each kind. */
async function census(): Promise<Record<string, { keys: number; meanBytes: number }>> {
  const keys = await admin.keys(`${prefix}*`);
  const groups: Record<string, number[]> = {};
  for (const full of keys) {
    const k = full.slice(prefix.length);
    const kind = k.startsWith('oidc:grant:')
      ? 'oidc:grant (set of the grant’s artifact keys)'
      : k.startsWith('oidc:')
        ? k.split(':').slice(0, /:uid:|:userCode:/.test(k) ? 3 : 2).join(':')
        : k.split(':').slice(0, 2).join(':');
    (groups[kind] ??= []).push(Number(await admin.call('MEMORY', 'USAGE', full, 'SAMPLES', '0')));
  }
  return Object.fromEntries(
    Object.entries(groups).map(([kind, sizes]) => [kind, { keys: sizes.length, meanBytes: Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length) }]),
  );
}

const orgId = await createOrg(env);
const app = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read runs:read' });

// 1. Opaque client-credentials tokens: N live tokens.
const before = await usedMemory();
for (let done = 0; done < CC_TOKENS; done += 50) {
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      const res = await fetch(new URL('/token', env.url), {
        method: 'POST',
        headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=workflows:read',
      });
      if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}`);
      await res.arrayBuffer();
    }),
  );
}
const afterCc = await census();
// The token endpoint's own rate-limit log (one member per request in its window, lifted here) is a
// rate-limit window, reported below; drop it to see the tokens alone.
await admin.del(...(await admin.keys(`${prefix}rl:*`)));
const perClientCredentialsToken = Math.round((await usedMemory() - before) / CC_TOKENS);

// 2. Users through sign-in and consent: opaque access token, refresh token (PostgreSQL), grant set,
// consumed code, interaction; then JWT access tokens for the API audience.
const web = await createClient(env, { orgId, grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid offline_access workflows:read' });
for (let i = 0; i < FLOWS; i++) {
  const user = await createUser(env, { orgIds: [orgId] });
  await authorize(env, { client: web, user, scope: 'openid offline_access workflows:read', params: { prompt: 'consent' } });
}
const afterOpaqueFlows = await census();
for (let i = 0; i < FLOWS; i++) {
  const user = await createUser(env, { orgIds: [orgId] });
  await authorize(env, { client: web, user, scope: 'openid offline_access workflows:read', resource: env.config.apiAudience, params: { prompt: 'consent' } });
}
const afterFlows = await census();

// 3. Rate-limit windows (sliding log: one sorted set per subject and policy, one member per admitted
// request still in the window, so at most `limit` members).
const limiter = new RedisLimiter(kv.client, { timeoutMs: 2000 });
const windows: Record<string, number> = {};
for (const n of [1, 10, 100, 1000]) {
  const key = `rl:measure:${n}:${randomBytes(3).toString('hex')}`;
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => limiter.check(key, { limit: n, window: 3600 })));
  windows[`${n} requests in the window`] = Number(await admin.call('MEMORY', 'USAGE', prefix + key, 'SAMPLES', '0'));
}
limiter.close();

// 4. Deny-list and replay entries, one each, with real-length names.
await kv.set(`revoked:jti:${randomBytes(16).toString('base64url')}`, '1', 3600);
await kv.set(`revoked:grant:${randomBytes(16).toString('base64url')}`, '1', 3600);
// The replay store every private_key_jwt endpoint shares (oidc-provider's ReplayDetection model).
await (env.server.services.provider as any).ReplayDetection.unique(`fgc_${randomBytes(12).toString('base64url')}`, randomBytes(16).toString('hex'), Math.floor(Date.now() / 1000) + 300);
const small = await census();

// 5. Cached credentials (what introspection answers from): in-process, not in Redis. Heap per entry
// of the credentials cache (one resolved credential with its invalidation tags), for sizing pods.
let heapPerCachedAnswer: number | null = null;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  const cache = new Cache<Resolution>('measure', { max: 100_000, ttlMs: 60_000 });
  gc();
  const h0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < 50_000; i++) {
    const keyId = randomBytes(16).toString('hex');
    const org = randomBytes(16).toString('hex');
    cache.set(
      randomBytes(32).toString('base64url'),
      {
        ok: true, kind: 'api_key', orgId: org, userId: randomBytes(16).toString('hex'), role: 'member', memberTeamId: null,
        clientId: null, keyId, scopes: ['workflows:read', 'runs:read'], teamId: null, workflowId: null,
        expiresAt: null, issuedAt: Math.floor(Date.now() / 1000), jti: null, audience: null, subject: keyId,
        queryAllowed: false, plan: 'pro', keyLimits: null, orgLimits: null,
      },
      cache.version,
      { tags: [`key:${keyId}`, `org:${org}`] },
    );
  }
  gc();
  heapPerCachedAnswer = Math.round((process.memoryUsage().heapUsed - h0) / 50_000);
  // Used after the measurement, so the collector cannot take the cache before it is measured.
  if (cache.size !== 50_000) throw new Error(`the cache kept ${cache.size} entries`);
}

const info = await admin.info('memory');
console.log(
  JSON.stringify(
    {
      redis: (await admin.info('server')).match(/redis_version:(\S+)/)![1],
      allocator: info.match(/mem_allocator:(\S+)/)![1],
      usedMemoryGrowthBytesPerClientCredentialsToken: perClientCredentialsToken,
      memoryUsageByKeyKind: {
        [`after ${CC_TOKENS} client-credentials tokens`]: afterCc,
        [`after ${FLOWS} sign-ins with opaque access tokens`]: afterOpaqueFlows,
        [`after ${FLOWS} more with JWT access tokens`]: afterFlows,
        'with one deny-list and replay entry each': small,
      },
      rateLimitWindowBytes: windows,
      cachedAnswers: { inRedis: 0, heapBytesPerEntry: heapPerCachedAnswer },
    },
    null,
    2,
  ),
);

admin.disconnect();
await env.close();
await redis.stop();
process.exit(0);
