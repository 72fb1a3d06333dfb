import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';
import { redisMode } from './schema.js';

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

describe('loadConfig: Redis modes', () => {
  it('chooses standalone, Sentinel or Cluster from which variable is set', () => {
    expect(redisMode(loadConfig(base))).toBeNull();
    expect(redisMode(loadConfig({ ...base, REDIS_URL: 'rediss://flowgate:pw@redis.internal:6380' }))).toBe('standalone');
    const s = loadConfig({ ...base, REDIS_SENTINELS: 's1:26379, s2:26379,[::1]:26379', REDIS_SENTINEL_NAME: 'mymaster', REDIS_SENTINEL_PASSWORD: 'spw', REDIS_TLS: 'true' });
    expect(redisMode(s)).toBe('sentinel');
    expect(s.redis).toMatchObject({ sentinels: ['s1:26379', 's2:26379', '[::1]:26379'], sentinelName: 'mymaster', sentinelPassword: 'spw', tls: true, sentinelTls: false });
    const c = loadConfig({ ...base, REDIS_URL: '', REDIS_CLUSTER_NODES: 'r1:6379,r2:6379', REDIS_USERNAME: 'flowgate', REDIS_PASSWORD: 'pw', WORKERS: '4', DATABASE_URL: 'postgres://localhost/x' });
    expect(redisMode(c)).toBe('cluster');
    expect(c.redis).toMatchObject({ clusterNodes: ['r1:6379', 'r2:6379'], username: 'flowgate', password: 'pw' });
  });

  it('names the variable when the settings do not make one Redis, without echoing passwords', () => {
    expect(failure({ ...base, REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'r1:6379' })).toMatch(/^ {2}REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES/m);
    expect(failure({ ...base, REDIS_SENTINELS: 's1:26379' })).toMatch(/^ {2}REDIS_SENTINEL_NAME: must name the master group/m);
    expect(failure({ ...base, REDIS_CLUSTER_NODES: 'r1' })).toMatch(/^ {2}REDIS_CLUSTER_NODES: each entry must be host:port/m);
    expect(failure({ ...base, REDIS_URL: 'redis://a:6379', REDIS_TLS: 'true' })).toMatch(/^ {2}REDIS_TLS: a standalone Redis takes TLS from its URL: use rediss:\/\//m);
    expect(failure({ ...base, REDIS_CLUSTER_NODES: 'r1:6379', REDIS_PREFIX: '{flowgate}:' })).toMatch(/^ {2}REDIS_PREFIX: must not contain \{ or \} on Redis Cluster/m);
    const msg = failure({ ...base, REDIS_URL: 'redis://:inurl-secret@a:6379', REDIS_PASSWORD: 'second-secret' });
    expect(msg).toMatch(/^ {2}REDIS_PASSWORD: REDIS_URL carries a password already/m);
    expect(msg).not.toMatch(/inurl-secret|second-secret/);
    expect(failure({ ...base, REDIS_PASSWORD: 'pw' })).toMatch(/^ {2}REDIS_PASSWORD: Redis credentials and TLS settings need REDIS_URL/m);
    expect(failure({ ...base, WORKERS: '2', DATABASE_URL: 'postgres://localhost/x' })).toMatch(/WORKERS: 2 workers need REDIS_URL/);
  });
});

describe('operations settings', () => {
  it('reads secrets from *_FILE variables, refuses both forms at once, names an unreadable file', () => {
    const file = path.join(dataDir, 'pepper');
    writeFileSync(file, 'q'.repeat(24) + '\n');
    const { API_KEY_PEPPER: _p, ...rest } = base;
    expect(loadConfig({ ...rest, API_KEY_PEPPER_FILE: file }).apiKeys.pepper).toBe('q'.repeat(24));
    expect(failure({ ...base, API_KEY_PEPPER_FILE: file })).toMatch(/^ {2}API_KEY_PEPPER_FILE: API_KEY_PEPPER is set too/m);
    expect(failure({ ...rest, API_KEY_PEPPER_FILE: path.join(dataDir, 'missing') })).toMatch(/^ {2}API_KEY_PEPPER_FILE: cannot read .*ENOENT/m);
  });

  it('pool, timeouts, shutdown and tracing: defaults and names', () => {
    const c = loadConfig(base);
    expect(c.database).toMatchObject({ poolSize: 10, statementTimeoutMs: 5000, connectTimeoutMs: 5000, pgbouncer: false });
    expect(c.shutdown).toEqual({ delayMs: 0, timeoutMs: 25000 });
    expect(loadConfig({ ...base, NODE_ENV: 'production', METRICS_TOKEN: 't'.repeat(20) }).shutdown.delayMs).toBe(5000);
    expect(c.tracing.otlpEndpoint).toBeUndefined();
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/' }).tracing.otlpEndpoint).toBe('http://otel:4318/v1/traces');
    expect(failure({ ...base, DATABASE_POOL_SIZE: '0' })).toMatch(/^ {2}DATABASE_POOL_SIZE: /m);
    expect(failure({ ...base, SHUTDOWN_DELAY_MS: '-1' })).toMatch(/^ {2}SHUTDOWN_DELAY_MS: /m);
    expect(failure({ ...base, METRICS_TOKEN: 'short' })).toMatch(/^ {2}METRICS_TOKEN: /m);
  });
});

