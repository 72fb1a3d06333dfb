import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { LastUsedTracker } from '../src/apikeys/last-used.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { createOrg } from './support/oauth.js';
import { createKey } from './ratelimit-support.js';

// last_used_at: written at the interval and on shutdown, and a busy key's row rewritten at most once
// per interval whichever instance flushes (each tracker here stands for one instance or worker).
let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

const INTERVAL = 60_000;
const silent = pino({ level: 'silent' });

async function row(id: string): Promise<{ xmin: string; last_used_at: Date | null }> {
  const [r] = await env.server.services.ds.query('SELECT xmin::text AS xmin, last_used_at FROM api_keys WHERE id = $1', [id]);
  return r;
}

describe('last_used_at', () => {
  it('a busy key used on three instances is rewritten once per interval, and always moves forward', async () => {
    const { ds } = env.server.services;
    const { apiKey } = await createKey(env, await createOrg(env));
    const instances = [0, 1, 2].map(() => new LastUsedTracker(ds, silent, INTERVAL));
    const t0 = Date.now();
    instances[0].touch(apiKey.id, t0);
    await instances[0].flush();
    const first = await row(apiKey.id);
    expect(first.last_used_at?.getTime()).toBe(t0);
    // Every instance sees the key used again and again within the interval: no rewrite.
    for (let i = 1; i <= 5; i++) {
      for (const t of instances) t.touch(apiKey.id, t0 + i * 1000);
      for (const t of instances) await t.flush();
    }
    expect(await row(apiKey.id)).toEqual(first);
    // One interval later, one write (the first instance to flush); the others find it fresh.
    for (const t of instances) t.touch(apiKey.id, t0 + INTERVAL + 5000);
    for (const t of instances) await t.flush();
    const second = await row(apiKey.id);
    expect(second.xmin).not.toBe(first.xmin);
    expect(second.last_used_at?.getTime()).toBe(t0 + INTERVAL + 5000);
    for (const t of instances) await t.close();
    expect(await row(apiKey.id)).toEqual(second);
  });

  it('what is pending is written on shutdown', async () => {
    const { ds } = env.server.services;
    const { apiKey } = await createKey(env, await createOrg(env));
    const tracker = new LastUsedTracker(ds, silent, INTERVAL);
    const at = Date.now();
    tracker.touch(apiKey.id, at);
    expect((await row(apiKey.id)).last_used_at).toBeNull();
    await tracker.close();
    expect((await row(apiKey.id)).last_used_at?.getTime()).toBe(at);
  });

  it('the server flushes at the configured interval, a minute by default', () => {
    expect(env.config.lastUsedFlushMs).toBe(60_000);
    expect((env.server.services.apiKeys as unknown as { lastUsed: LastUsedTracker }).lastUsed.intervalMs).toBe(60_000);
  });
});
