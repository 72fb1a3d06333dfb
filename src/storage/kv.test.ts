import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { KeyValueStore } from './kv.js';
import { MemoryKeyValueStore } from './memory-kv.js';
import { RedisKeyValueStore } from './redis-kv.js';

// One contract, two implementations: the in-process store of the development mode must behave like
// Redis, or the embedded mode would hide bugs that only show in deployments.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const stores: KeyValueStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const implementations: [string, () => KeyValueStore][] = [
  ['memory', () => new MemoryKeyValueStore()],
  ['redis', () => new RedisKeyValueStore(REDIS_URL, `fgtest:kv:${randomBytes(4).toString('hex')}:`)],
];

describe.each(implementations)('KeyValueStore contract: %s', (_name, make) => {
  const kv = make();
  stores.push(kv);
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
