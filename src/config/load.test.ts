import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-config-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const secrets = { COOKIE_SECRETS: 'c'.repeat(32), API_KEY_PEPPER: 'p'.repeat(16) };
const base = { NODE_ENV: 'test', DATA_DIR: dataDir, ...secrets };

/** The ConfigError message loadConfig throws for this environment (fails the test if it does not throw). */
function failure(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('accepts the defaults', () => {
    const c = loadConfig(base);
    expect(c.port).toBe(3000);
    expect(c.issuer).toBe('http://localhost:3000');
    expect(c.workers).toBe(1);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.bodyLimit).toBe('100kb');
  });

  it('names PORT when it is not a port number', () => {
    expect(failure({ ...base, PORT: 'eighty' })).toMatch(/^ {2}PORT: /m);
    expect(failure({ ...base, PORT: '70000' })).toMatch(/^ {2}PORT: /m);
  });

  it('names DATABASE_URL when it is not a postgres URL', () => {
    const msg = failure({ ...base, DATABASE_URL: 'mysql://root@localhost/flowgate' });
    expect(msg).toMatch(/^ {2}DATABASE_URL: must be a postgres:\/\/ URL/m);
  });

  it('names REDIS_URL when it is not a redis URL', () => {
    expect(failure({ ...base, REDIS_URL: 'localhost:6379' })).toMatch(/^ {2}REDIS_URL: /m);
  });

  it('names COOKIE_SECRETS when a secret is too short', () => {
    const msg = failure({ ...base, COOKIE_SECRETS: `${'a'.repeat(40)},short` });
    expect(msg).toMatch(/^ {2}COOKIE_SECRETS: each cookie secret needs at least 32 characters/m);
  });

  it('never echoes the secret value in the message', () => {
    const msg = failure({ ...base, COOKIE_SECRETS: 'tooShortSecretValue' });
    expect(msg).not.toContain('tooShortSecretValue');
  });

  it('requires COOKIE_SECRETS and API_KEY_PEPPER explicitly in production', () => {
    const msg = failure({ NODE_ENV: 'production', DATA_DIR: dataDir });
    expect(msg).toMatch(/^ {2}COOKIE_SECRETS: must be set when NODE_ENV=production/m);
    expect(msg).toMatch(/^ {2}API_KEY_PEPPER: must be set when NODE_ENV=production/m);
    const onlyPepper = failure({ NODE_ENV: 'production', DATA_DIR: dataDir, COOKIE_SECRETS: secrets.COOKIE_SECRETS });
    expect(onlyPepper).toMatch(/API_KEY_PEPPER/);
    expect(onlyPepper).not.toMatch(/COOKIE_SECRETS/);
    const c = loadConfig({ NODE_ENV: 'production', DATA_DIR: dataDir, ...secrets });
    expect(c.seedDevData).toBe(false);
  });

  it('names the variable for every bad value at once', () => {
    const msg = failure({ ...base, PORT: 'x', LOG_LEVEL: 'loud', ACCESS_TOKEN_TTL: '-5' });
    expect(msg).toMatch(/PORT:/);
    expect(msg).toMatch(/LOG_LEVEL:/);
    expect(msg).toMatch(/ACCESS_TOKEN_TTL:/);
  });

  it('refuses WORKERS > 1 without PostgreSQL and Redis', () => {
    expect(failure({ ...base, WORKERS: '2' })).toMatch(/WORKERS: 2 workers need DATABASE_URL \(embedded PGlite is single-process\)/);
    expect(failure({ ...base, WORKERS: '2', DATABASE_URL: 'postgres://localhost/x' })).toMatch(/WORKERS: 2 workers need REDIS_URL/);
    expect(failure({ ...base, WORKERS: '0' })).toMatch(/WORKERS:/);
    const c = loadConfig({ ...base, WORKERS: '2', DATABASE_URL: 'postgres://localhost/x', REDIS_URL: 'redis://localhost:6379' });
    expect(c.workers).toBe(2);
  });
});
