import { describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import { CacheRegistry } from '../storage/cache.js';
import { RateLimitPolicies } from './policies.js';

const config = loadConfig({ NODE_ENV: 'test', COOKIE_SECRETS: 'x'.repeat(32), API_KEY_PEPPER: 'p'.repeat(32) });

function policies(ds: { query: (sql: string) => Promise<unknown> }) {
  const caches = new CacheRegistry();
  const published: string[][] = [];
  const p = new RateLimitPolicies(ds as unknown as DataSource, config, pino({ level: 'silent' }), {
    orgs: caches.create('orgs', { max: 10, ttlMs: 60_000 }),
    keys: caches.create('keys', { max: 10, ttlMs: 60_000 }),
    publish: async (...t) => {
      published.push(t);
      caches.invalidate(t);
    },
  });
  return { p, published };
}

describe('RateLimitPolicies', () => {
  it('a key resolved with its plan and overrides needs no look-up', async () => {
    const { p } = policies({ query: async () => Promise.reject(new Error('no query expected')) });
    const known = { plan: 'enterprise', keyLimits: { read: { limit: 7, window: '1m' } }, orgLimits: { write: { limit: 3, window: '1m' } } };
    expect(await p.resolve('read', 'org-1', 'key-1', known)).toEqual({ limit: { limit: 7, window: 60 }, bucket: 'read' });
    expect(await p.resolve('write', 'org-1', 'key-1', known)).toEqual({ limit: { limit: 3, window: 60 }, bucket: 'write' });
    expect((await p.resolve('execute', 'org-1', 'key-1', known))?.limit.limit).toBe(config.plans.enterprise.rateLimits!.execute.limit);
  });

  it('an organization is read once per cache lifetime, and again after its limits change', async () => {
    let reads = 0;
    let limits: unknown = null;
    const { p, published } = policies({
      query: async (sql: string) => {
        if (sql.startsWith('UPDATE')) return [];
        reads++;
        return [{ plan: 'free', limits }];
      },
    });
    await p.resolve('read', 'org-1');
    await p.resolve('read', 'org-1');
    expect(reads).toBe(1);
    limits = { read: { limit: 5, window: '1m' } };
    await p.setOrgLimits('org-1', limits as Record<string, unknown>);
    expect(published).toEqual([['org:org-1']]);
    expect((await p.resolve('read', 'org-1'))?.limit.limit).toBe(5);
    expect(reads).toBe(2);
  });
});
