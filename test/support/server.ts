import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/http/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { freePort } from './process.js';

export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Test servers serve /metrics on their main port behind this bearer token (see metrics()). */
export const TEST_METRICS_TOKEN = 'test-metrics-token-0123456789';

/** A fresh PostgreSQL database for one test file; dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `flowgate_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Captures the JSON log lines a server writes, so tests can grep them for secrets. */
export class LogCapture extends Writable {
  lines: string[] = [];
  _write(chunk: Buffer, _enc: string, cb: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    cb();
  }
  get text() {
    return this.lines.join('\n');
  }
}

let redisDefaults: Record<string, string> = {};

/**
 * Every startTestServer() of this test file runs on this Redis (for example a Cluster's
 * REDIS_CLUSTER_NODES with REDIS_URL emptied) unless its own environment says otherwise. Lets the
 * Redis-mode suites run the ordinary test files unchanged on Sentinel and Cluster.
 */
export function useRedis(env: Record<string, string>): void {
  redisDefaults = env;
}

export interface TestEnv {
  config: Config;
  server: RunningServer;
  url: string;
  logs: LogCapture;
  /** Stop and start the server on the same database, Redis prefix, keys and port. */
  restart(): Promise<void>;
  /** The Prometheus text of /metrics. */
  metrics(): Promise<string>;
  /** Another Flowgate instance sharing the same stores (different port). */
  startInstance(): Promise<RunningServer>;
  close(): Promise<void>;
}

/**
 * Starts a real Flowgate on a random port, on its own PostgreSQL database, its own Redis key prefix
 * and its own signing keys. Each test file calls this once (beforeAll) and close() afterwards.
 */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestEnv> {
  const db = await createTestDatabase();
  const keysDir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-keys-'));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-data-'));
  const logs = new LogCapture();
  const port = await freePort();
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: `fgtest:${randomBytes(4).toString('hex')}:`,
    LOG_LEVEL: 'info',
    COOKIE_SECRETS: randomBytes(32).toString('base64url'),
    API_KEY_PEPPER: randomBytes(32).toString('base64url'),
    KEYS_DIR: keysDir,
    DATA_DIR: dataDir,
    SEED_DEV_DATA: 'false',
    ...redisDefaults,
    METRICS_TOKEN: TEST_METRICS_TOKEN,
    ...env,
  });
  const start = () => startServer(config, createLogger(config.logLevel, logs));
  let server = await start();
  const extra: RunningServer[] = [];
  const te: TestEnv = {
    config,
    server,
    url: config.issuer,
    logs,
    async restart() {
      await te.server.close();
      server = await start();
      te.server = server;
    },
    async metrics() {
      const r = await fetch(`${config.issuer}/metrics`, { headers: { authorization: `Bearer ${TEST_METRICS_TOKEN}` } });
      if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
      return r.text();
    },
    async startInstance() {
      const p = await freePort();
      const other = await startServer({ ...config, port: p }, createLogger(config.logLevel, logs));
      extra.push(other);
      return other;
    },
    async close() {
      for (const o of extra) await o.close().catch(() => {});
      await te.server.close().catch(() => {});
      await db.drop().catch(() => {});
      rmSync(keysDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return te;
}
