import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.js';
import { categoryFor } from './categories.js';
import { MemoryLimiter } from './memory-limiter.js';
import { rateLimitHeaders } from './headers.js';

const base = { NODE_ENV: 'test', COOKIE_SECRETS: 'x'.repeat(32), API_KEY_PEPPER: 'p'.repeat(16), DATA_DIR: '/tmp/fg-rl-config-test' };

describe('rate-limit configuration', () => {
  it('loads the documented per-minute defaults and expresses hourly limits', () => {
    const c = loadConfig({ ...base, RATE_LIMITS: JSON.stringify({ defaults: { all: { limit: 1000, window: '1h' } } }) });
    expect(c.rateLimits.defaults.write).toEqual({ limit: 100, window: 60 });
    expect(c.rateLimits.defaults.all).toEqual({ limit: 1000, window: 3600 });
    expect(c.plans.free.rateLimits?.webhook).toEqual({ limit: 10000, window: 60 });
    expect(c.rateLimits.failMode).toBe('open');
  });
  it('refuses zero windows, negative limits and unknown fail modes, naming the setting', () => {
    expect(() => loadConfig({ ...base, RATE_LIMITS: JSON.stringify({ token: { limit: 5, window: 0 } }) })).toThrow(/rateLimits\.token\.window: window must be a positive/);
    expect(() => loadConfig({ ...base, RATE_LIMITS: JSON.stringify({ defaults: { read: { limit: -1, window: 60 } } }) })).toThrow(/rateLimits\.defaults\.read\.limit: limit must not be negative/);
    expect(() => loadConfig({ ...base, RATE_LIMITS: JSON.stringify({ loginIp: { limit: 5, window: '0m' } }) })).toThrow(/loginIp\.window/);
    expect(() => loadConfig({ ...base, RATE_LIMIT_FAIL_MODE: 'sometimes' })).toThrow(/RATE_LIMIT_FAIL_MODE: must be "open" or "closed"/);
  });
});

describe('categories and the in-memory sliding log', () => {
  it('maps methods and routes', () => {
    expect(categoryFor('GET', '/api/v1/runs')).toBe('read');
    expect(categoryFor('PUT', '/api/v1/workflows/1')).toBe('write');
    expect(categoryFor('POST', '/api/v1/runs/r1/retry')).toBe('execute');
    expect(categoryFor('POST', '/api/v1/workflows')).toBe('write');
  });
  it('is exact at the window edge and its headers count down', () => {
    const m = new MemoryLimiter();
    const l = { limit: 2, window: 10 };
    expect(m.checkSync('k', l, 0).remaining).toBe(1);
    expect(m.checkSync('k', l, 5000).remaining).toBe(0);
    const refused = m.checkSync('k', l, 9999);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfter).toBe(1);
    expect(rateLimitHeaders(refused, 'write')).toMatchObject({ 'Retry-After': '1', 'X-RateLimit-Remaining': '0', RateLimit: '"write";r=0;t=1', 'RateLimit-Policy': '"write";q=2;w=10' });
    expect(m.checkSync('k', l, 10_000).allowed).toBe(true); // the first left at exactly 10 s
    expect(m.checkSync('k', l, 10_001).allowed).toBe(false);
    m.close();
  });
});
