import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { loadConfig } from '../config/load.js';
import type { KeyValueStore } from './kv.js';
import { MemoryKeyValueStore } from './memory-kv.js';
import { openKeyValueStore } from './open-kv.js';
import { RedisKeyValueStore } from './redis-kv.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, projectRoot } from '../../test/support/process.js';
import { flowgateAclRules, makeTls, RedisClusterFixture, RedisProcess, RedisSentinelFixture, StandaloneRedis, type TlsMaterial } from '../../test/support/redis-topologies.js';

// One contract, every implementation: the in-process store of the development mode must behave like
// Redis, and Redis must behave the same whether it is one server, a Sentinel group or a Cluster (with
// TLS and a restricted ACL user, as docs/operations.md tells operators to run it). The Redis modes
// are opened through the configuration, the way Flowgate opens them.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ACL = { prefix: 'fgtest:', password: `pw-${randomBytes(6).toString('hex')}` };
const stores: KeyValueStore[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let tls: TlsMaterial;
let standalone: StandaloneRedis;
let cluster: RedisClusterFixture;
let sentinel: RedisSentinelFixture;

beforeAll(async () => {
  tls = makeTls();
  [standalone, cluster, sentinel] = await Promise.all([
    StandaloneRedis.start({ tls, acl: ACL }),
    RedisClusterFixture.start({ tls, acl: ACL }),
    RedisSentinelFixture.start({ tls, acl: ACL }),
  ]);
}, 60_000);
afterAll(async () => {
  for (const s of stores) await s.close();
  await Promise.all([standalone?.stop(), cluster?.stop(), sentinel?.stop()]);
});

/** A store opened from Flowgate's configuration for this environment, with a fresh prefix. */
function open(env: Record<string, string>): KeyValueStore {
  const config = loadConfig({ NODE_ENV: 'test', COOKIE_SECRETS: 'c'.repeat(32), API_KEY_PEPPER: 'p'.repeat(16), REDIS_PREFIX: `fgtest:kv:${randomBytes(4).toString('hex')}:`, ...env });
  const kv = openKeyValueStore(config);
  stores.push(kv);
  return kv;
}

const implementations: [string, () => KeyValueStore][] = [
  ['memory', () => new MemoryKeyValueStore()],
  ['redis standalone', () => open({ REDIS_URL })],
  ['redis standalone, TLS and ACL user', () => open(standalone.env())],
  ['redis cluster, TLS and ACL user', () => open(cluster.env())],
  ['redis sentinel, TLS and ACL user', () => open(sentinel.env())],
];

describe.each(implementations)('KeyValueStore contract: %s', (_name, make) => {
  let kv: KeyValueStore;
  beforeAll(() => {
    kv = make();
  });
  const k = (s: string) => `${s}:${randomBytes(3).toString('hex')}`;

  it('get/set/del and mGet', async () => {
    const a = k('a');
    const b = k('b');
    expect(await kv.get(a)).toBeNull();
    await kv.set(a, '1');
    await kv.set(b, '2', 60);
    expect(await kv.get(a)).toBe('1');
    expect(await kv.mGet([a, k('missing'), b])).toEqual(['1', null, '2']);
    expect(await kv.mGet([])).toEqual([]);
    await kv.del(a, b);
    expect(await kv.mGet([a, b])).toEqual([null, null]);
    await kv.del();
  });

  it('mGet and del over many keys (on Cluster: spread over every master)', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => k(`many${i}`));
    await Promise.all(keys.map((key, i) => kv.set(key, String(i), 60)));
    expect(await kv.mGet(keys)).toEqual(keys.map((_, i) => String(i)));
    await kv.del(...keys.slice(0, 30));
    expect(await kv.mGet(keys)).toEqual(keys.map((_, i) => (i < 30 ? null : String(i))));
  });

  it('expires keys after their TTL', async () => {
    const a = k('ttl');
    await kv.set(a, 'x', 1);
    expect(await kv.get(a)).toBe('x');
    await sleep(1100);
    expect(await kv.get(a)).toBeNull();
  });

  it('setNX stores only once (single-use checks)', async () => {
    const a = k('nx');
    expect(await kv.setNX(a, 'first', 60)).toBe(true);
    expect(await kv.setNX(a, 'second', 60)).toBe(false);
    expect(await kv.get(a)).toBe('first');
    const race = k('nxrace');
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => kv.setNX(race, String(i), 60)));
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it('getDel consumes once', async () => {
    const a = k('gd');
    await kv.set(a, 'v', 60);
    const both = await Promise.all([kv.getDel(a), kv.getDel(a)]);
    expect(both.filter((v) => v === 'v')).toHaveLength(1);
    expect(await kv.get(a)).toBeNull();
  });

  it('sets: add members, list them, extend but never shorten the life', async () => {
    const s = k('set');
    await kv.sAdd(s, 'm1', 1);
    await kv.sAdd(s, 'm2', 60);
    await kv.sAdd(s, 'm3', 1);
    expect((await kv.sMembers(s)).sort()).toEqual(['m1', 'm2', 'm3']);
    await sleep(1100);
    expect((await kv.sMembers(s)).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(await kv.sMembers(k('none'))).toEqual([]);
  });

  it('incrBy counts and keeps the first TTL', async () => {
    const c = k('ctr');
    expect(await kv.incrBy(c, 1, 1)).toBe(1);
    expect(await kv.incrBy(c, 5, 60)).toBe(6);
    await sleep(1100);
    expect(await kv.incrBy(c, 1, 60)).toBe(1);
    const racing = k('ctrrace');
    await Promise.all(Array.from({ length: 10 }, () => kv.incrBy(racing, 1, 60)));
    expect(await kv.get(racing)).toBe('10');
    const plain = k('plain');
    expect(await kv.incrBy(plain, 2)).toBe(2);
  });

  it('publish reaches subscribers of the same channel only', async () => {
    const channel = k('chan');
    const got: string[] = [];
    const other: string[] = [];
    await kv.subscribe(channel, (m) => got.push(m));
    await kv.subscribe(k('other'), (m) => other.push(m));
    await kv.publish(channel, 'hello');
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
    expect(got).toEqual(['hello']);
    expect(other).toEqual([]);
  });

  it('ping answers true while up', async () => {
    expect(await kv.ping()).toBe(true);
  });
});

describe('the ACL user operators are told to create', () => {
  it('is exactly the one these tests run Flowgate with', () => {
    const docs = readFileSync(path.join(projectRoot, 'docs/operations.md'), 'utf8');
    expect(docs).toContain(`ACL SETUSER flowgate >PASSWORD ${flowgateAclRules('flowgate:')}\n`);
  });
});

describe('Redis errors never carry command arguments', () => {
  it('a refused command surfaces its message and command name, not the value it carried', async () => {
    // The ACL user may not write outside its prefix: NOPERM. ioredis attaches [key, value, 'EX', 60]
    // to the error as err.command.args, and callers log errors.
    const kv = open({ ...standalone.env(), REDIS_PREFIX: 'outside:' });
    const secret = `secret-${randomBytes(8).toString('hex')}`;
    const err = await kv.set('session', secret, 60).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const e = err as Error;
    const seen = JSON.stringify({ ...e, message: e.message, stack: e.stack }); // what a logger serializes
    expect(seen).not.toContain(secret);
    expect(seen).not.toContain(ACL.password);
    expect(seen).toMatch(/NOPERM/);
    expect(seen).toContain('"command":"set"');
  });
});

// ---------------------------------------------------------------------------------------------
// The subscription-reset hook: a killed subscriber connection (or a Redis that was not there when
// the subscription was asked for) means messages may have been missed; the listener must hear of it
// once Redis confirmed the subscription again, and messages published after that must arrive.

async function waitUntil(what: string, cond: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function killSubscribers(admins: Redis[]): Promise<number> {
  let killed = 0;
  for (const a of admins) killed += Number(await a.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
  return killed;
}

async function resetScenario(kv: KeyValueStore, admins: () => Redis[]) {
  const channel = `reset:${randomBytes(3).toString('hex')}`;
  const got: string[] = [];
  let resets = 0;
  await kv.subscribe(channel, (m) => got.push(m));
  kv.onSubscriptionReset(() => resets++);
  await kv.publish(channel, 'before');
  await waitUntil('the first message', () => got.length === 1);
  expect(resets).toBe(0); // the first subscription is not a reset

  const conns = admins();
  try {
    expect(await killSubscribers(conns)).toBeGreaterThanOrEqual(1);
    await waitUntil('the reset listener', () => resets === 1);
    await kv.publish(channel, 'after');
    await waitUntil('the message published after the reset', () => got.includes('after'));
    expect(got).toEqual(['before', 'after']);
    // Twice: it fires on every re-subscription, not once per process.
    await killSubscribers(conns);
    await waitUntil('the second reset', () => resets === 2);
    await kv.publish(channel, 'again');
    await waitUntil('the message after the second reset', () => got.includes('again'));
  } finally {
    for (const c of conns) c.disconnect();
  }
}

describe('onSubscriptionReset', () => {
  it('standalone: CLIENT KILL TYPE pubsub, then the listener fires and later messages arrive', async () => {
    await resetScenario(open(standalone.env()), () => [standalone.admin()]);
  });

  it('cluster: the subscriber moves or reconnects, the listener fires and later messages arrive', async () => {
    await resetScenario(open(cluster.env()), () => cluster.nodes.map((_, i) => cluster.admin(i)));
  });

  it('sentinel: the listener fires after the subscriber reconnected to the master', async () => {
    const masterPort = await sentinel.masterPort();
    await resetScenario(open(sentinel.env()), () => [sentinel.admin(masterPort)]);
  });

  it('fires when Redis confirms a subscription that had to be made while it was unreachable', async () => {
    const port = await freePort();
    const kv = new RedisKeyValueStore(`redis://127.0.0.1:${port}`, `fgtest:late:${randomBytes(3).toString('hex')}:`);
    stores.push(kv);
    let resets = 0;
    const got: string[] = [];
    kv.onSubscriptionReset(() => resets++);
    const started = Date.now();
    await kv.subscribe('late', (m) => got.push(m));
    expect(Date.now() - started).toBeLessThan(3000); // startup is not held up
    const server = new RedisProcess(port, ['--bind', '127.0.0.1', '--port', String(port)]);
    await server.start();
    try {
      await waitUntil('the reset after the late first subscription', () => resets === 1);
      await kv.publish('late', 'hello');
      await waitUntil('the message', () => got.length === 1);
    } finally {
      await kv.close();
      await server.remove();
    }
  });

  it('the in-process store never loses a message and never calls it', async () => {
    const kv = new MemoryKeyValueStore();
    let resets = 0;
    const remove = kv.onSubscriptionReset(() => resets++);
    await kv.subscribe('c', () => {});
    await kv.publish('c', 'm');
    await sleep(10);
    remove();
    expect(resets).toBe(0);
    await kv.close();
  });
});

describe('RedisKeyValueStore with Redis unreachable', () => {
  it('ping answers false quickly and subscribe does not hang', async () => {
    const kv = new RedisKeyValueStore('redis://127.0.0.1:1', 'fgtest:down:');
    stores.push(kv);
    const started = Date.now();
    await kv.subscribe('anything', () => {});
    expect(await kv.ping()).toBe(false);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
