import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createLogger } from '../http/logger.js';
import { RedisKeyValueStore } from '../storage/redis-kv.js';
import { LogCapture } from '../../test/support/server.js';
import { RedisClusterFixture, StandaloneRedis } from '../../test/support/redis-topologies.js';
import { parseHostPort } from '../storage/redis-topology.js';
import { RedisLimiter } from './redis-limiter.js';

// The shared limiter on a Redis Cluster: one key per check, so one slot, so the script runs on the
// key's master through ioredis' Cluster client. And when Redis answers but refuses the script (a
// Cluster reached as a single node answers MOVED; an ACL without EVALSHA answers NOPERM), that is a
// configuration error: reported as such, logged as an error, never mistaken for a passing outage.
let cluster: RedisClusterFixture;
let acl: StandaloneRedis;
const closers: (() => unknown)[] = [];

beforeAll(async () => {
  [cluster, acl] = await Promise.all([RedisClusterFixture.start({ masters: 3 }), StandaloneRedis.start({ acl: { prefix: 'fgtest:', password: 'pw' } })]);
}, 60_000);
afterAll(async () => {
  for (const c of closers) await c();
  await Promise.all([cluster?.stop(), acl?.stop()]);
});

const limit = { limit: 5, window: 60 };

describe('RedisLimiter on Redis Cluster', () => {
  it('admits exactly the limit for keys spread over every master, and stays up', async () => {
    const kv = new RedisKeyValueStore({ mode: 'cluster', nodes: cluster.seeds.split(',').map(parseHostPort) }, `fgtest:rl:${randomBytes(3).toString('hex')}:`);
    closers.push(() => kv.close());
    const limiter = new RedisLimiter(kv.client, { timeoutMs: 1000 });
    closers.push(() => limiter.close());
    const keys = Array.from({ length: 12 }, (_, i) => `rl:k:${i}`);
    for (const key of keys) {
      const allowed = await Promise.all(Array.from({ length: 8 }, () => limiter.check(key, limit).then((d) => d.allowed && d.source === 'redis')));
      expect(allowed.filter(Boolean)).toHaveLength(5);
    }
    expect(limiter.state()).toMatchObject({ state: 'up', failedChecks: 0 });
    // The windows really are on several masters.
    const sizes = await Promise.all(cluster.nodes.map(async (_, i) => {
      const a = cluster.admin(i);
      try {
        return await a.dbsize();
      } finally {
        a.disconnect();
      }
    }));
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  });
});

describe('RedisLimiter when Redis refuses the check', () => {
  async function refusedBy(client: Redis, key = `rl:${randomBytes(3).toString('hex')}`) {
    const logs = new LogCapture();
    const limiter = new RedisLimiter(client, { timeoutMs: 1000, logger: createLogger('info', logs) });
    closers.push(() => limiter.close(), () => client.disconnect());
    const d = await limiter.check(key, limit);
    await new Promise((r) => setTimeout(r, 20));
    return { d, state: limiter.state(), lines: logs.lines.map((l) => JSON.parse(l) as Record<string, any>) };
  }

  it('a Cluster reached as one node (MOVED): an error-level log and state "refused", not a quiet outage', async () => {
    const client = new Redis({ host: '127.0.0.1', port: cluster.nodes[0].port, maxRetriesPerRequest: 1 });
    // A key whose slot this node does not own, so that it answers MOVED.
    const slots = await client.cluster('SLOTS');
    const here = slots.filter((s) => s[2]?.[1] === cluster.nodes[0].port);
    let key = '';
    for (let i = 0; !key; i++) {
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', `probe${i}`));
      if (!here.some(([from, to]) => slot >= from && slot <= to)) key = `probe${i}`;
    }
    const { d, state, lines } = await refusedBy(client, key);
    expect(d.source).toBe('local'); // fail-open by configuration, as before…
    expect(state).toMatchObject({ state: 'degraded', reason: 'refused' });
    expect(state.lastError).toMatch(/^MOVED /);
    // …but loudly: an error naming the configuration problem, not the "unreachable" warning.
    expect(lines.some((l) => l.level === 50 && /refused the check \(configuration error\)/.test(l.msg))).toBe(true);
    expect(lines.some((l) => /unreachable/.test(l.msg))).toBe(false);
  });

  it('an ACL user without EVALSHA (NOPERM): the same', async () => {
    const admin = acl.admin();
    await admin.call('ACL', 'SETUSER', 'nolua', 'on', '>nolua-pw', '~*', '+@all', '-evalsha', '-eval');
    admin.disconnect();
    const { d, state, lines } = await refusedBy(new Redis({ port: acl.port, username: 'nolua', password: 'nolua-pw', maxRetriesPerRequest: 1 }));
    expect(d.source).toBe('local');
    expect(state).toMatchObject({ state: 'degraded', reason: 'refused' });
    expect(state.lastError).toMatch(/NOPERM/);
    expect(lines.filter((l) => l.level === 50)).toHaveLength(1);
  });
});
