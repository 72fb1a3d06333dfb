import { describe, expect, it } from 'vitest';
import { Cache, CacheRegistry } from './cache.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('Cache', () => {
  it('keeps an entry for its time to live, a negative one for the shorter one, and counts hits and misses', () => {
    const c = clock();
    const cache = new Cache<string>('t', { max: 10, ttlMs: 1000, negativeTtlMs: 100 }, c.now);
    cache.set('a', 'A', cache.version);
    cache.set('n', 'none', cache.version, { negative: true });
    expect(cache.get('a')).toBe('A');
    c.advance(200);
    expect(cache.get('n')).toBeUndefined();
    expect(cache.get('a')).toBe('A');
    c.advance(900);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 2 });
  });

  it('never keeps an entry longer than asked, nor longer than its own lifetime', () => {
    const c = clock();
    const cache = new Cache<string>('t', { max: 10, ttlMs: 1000 }, c.now);
    cache.set('short', 'x', cache.version, { ttlMs: 50 });
    cache.set('long', 'y', cache.version, { ttlMs: 50_000 });
    cache.set('gone', 'z', cache.version, { ttlMs: -5 });
    c.advance(60);
    expect(cache.get('short')).toBeUndefined();
    expect(cache.get('long')).toBe('y');
    expect(cache.get('gone')).toBeUndefined();
    c.advance(1000);
    expect(cache.get('long')).toBeUndefined();
  });

  it('drops exactly the entries carrying an invalidated tag, in every cache of the registry', () => {
    const reg = new CacheRegistry();
    const a = reg.create<number>('a', { max: 10, ttlMs: 10_000 });
    const b = reg.create<number>('b', { max: 10, ttlMs: 10_000 });
    a.set('k1', 1, a.version, { tags: ['key:1', 'org:o'] });
    a.set('k2', 2, a.version, { tags: ['key:2', 'org:o'] });
    b.set('k1', 3, b.version, { tags: ['key:1'] });
    reg.invalidate(['key:1']);
    expect([a.get('k1'), a.get('k2'), b.get('k1')]).toEqual([undefined, 2, undefined]);
    reg.invalidate(['org:o']);
    expect(a.get('k2')).toBeUndefined();
    expect(a.size + b.size).toBe(0);
  });

  it('refuses a value read before an invalidation (the generation guard)', () => {
    const cache = new Cache<string>('t', { max: 10, ttlMs: 10_000 });
    const before = cache.version;
    cache.invalidate('key:1');
    cache.set('k', 'stale', before, { tags: ['key:1'] });
    expect(cache.get('k')).toBeUndefined();
  });

  it('stays within its bound, dropping the oldest insertions first', () => {
    const cache = new Cache<number>('t', { max: 10, ttlMs: 10_000 });
    for (let i = 0; i < 25; i++) cache.set(`k${i}`, i, cache.version, { tags: [`t${i}`] });
    expect(cache.size).toBeLessThanOrEqual(10);
    expect(cache.get('k24')).toBe(24);
    expect(cache.get('k0')).toBeUndefined();
  });

  it('shares one load between concurrent misses of a key, and does not keep a load that raced with an invalidation', async () => {
    const cache = new Cache<string>('t', { max: 10, ttlMs: 10_000 });
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loader = async () => {
      loads++;
      await gate;
      return { value: 'v', tags: ['key:1'] };
    };
    const all = Promise.all([cache.load('k', loader), cache.load('k', loader), cache.load('k', loader)]);
    cache.invalidate('key:1');
    release();
    expect(await all).toEqual(['v', 'v', 'v']);
    expect(loads).toBe(1);
    expect(cache.get('k')).toBeUndefined();
    await cache.load('k', loader);
    expect(cache.get('k')).toBe('v');
  });
});
