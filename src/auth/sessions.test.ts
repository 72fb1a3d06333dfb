import { describe, expect, it } from 'vitest';
import { MemoryKeyValueStore } from '../storage/memory-kv.js';
import { SessionStore } from './sessions.js';

describe('dashboard sessions', () => {
  const setup = () => {
    let t = 1_000_000_000;
    const clock = { now: () => t, advance: (s: number) => (t += s * 1000) };
    const kv = new MemoryKeyValueStore(clock.now);
    return { clock, store: new SessionStore(kv, { idleSeconds: 600, absoluteSeconds: 3600 }, clock.now) };
  };

  it('a session ends after the idle timeout without use', async () => {
    const { clock, store } = setup();
    const { id } = await store.create('u1');
    clock.advance(599);
    expect(await store.get(id)).not.toBeNull();
    clock.advance(599); // used 599 s ago: still alive (the idle deadline moved)
    expect(await store.get(id)).not.toBeNull();
    clock.advance(601);
    expect(await store.get(id)).toBeNull();
  });

  it('a session in constant use still ends at the absolute timeout', async () => {
    const { clock, store } = setup();
    const { id } = await store.create('u1');
    for (let i = 0; i < 11; i++) {
      clock.advance(300);
      expect(await store.get(id), `after ${(i + 1) * 300} s`).not.toBeNull();
    }
    clock.advance(300); // 3600 s after sign-in
    expect(await store.get(id)).toBeNull();
  });

  it('destroy ends it at once; malformed ids are never looked up', async () => {
    const { store } = setup();
    const { id } = await store.create('u1');
    expect(id).toMatch(/^[\w-]{43}$/);
    await store.destroy(id);
    expect(await store.get(id)).toBeNull();
    expect(await store.get('../../etc')).toBeNull();
    expect(await store.get(undefined)).toBeNull();
  });
});
