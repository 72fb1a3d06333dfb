import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_REDIS_URL } from './support/server.js';
import { freePort, npmStart, type StartedProcess } from './support/process.js';

// WORKERS=N: N processes on one port through node:cluster, on PostgreSQL and Redis.
const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-workers-'));
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let running: StartedProcess | undefined;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await running?.stop('SIGKILL');
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** One request on its own connection, so the cluster's round-robin sees a new connection each time. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('WORKERS=2 on PostgreSQL and Redis', () => {
  it('serves from two workers on one port, seeds once, restarts a crashed worker, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const url = `http://127.0.0.1:${port}`;
    running = npmStart({
      METRICS_PORT: String(metricsPort),
      WORKERS: '2',
      NODE_ENV: 'development',
      PORT: String(port),
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: `fgtest:${randomBytes(4).toString('hex')}:`,
      DATA_DIR: path.join(dir, 'data'),
      KEYS_DIR: path.join(dir, 'keys'),
      COOKIE_SECRETS: randomBytes(32).toString('base64url'),
      API_KEY_PEPPER: randomBytes(32).toString('base64url'),
    });
    await running.waitFor(/"msg":"Flowgate listening"/);
    const logs = running.logs();
    expect(logs.find((l) => l.msg === 'Flowgate listening')).toMatchObject({ workers: 2 });
    expect(logs.some((l) => String(l.msg).startsWith('single-process'))).toBe(false);
    // The first-start credentials are handed out once, by the primary, not once per worker.
    expect(running.stdout.match(/"msg":"first start:/g)).toHaveLength(1);

    for (let i = 0; i < 6; i++) expect((await get(`${url}/.well-known/openid-configuration`)).status).toBe(200);
    expect(JSON.parse((await get(`${url}/readyz`)).body)).toMatchObject({ status: 'ready', checks: { database: 'up', redis: 'up' } });

    // Both workers answer: each request log line carries the worker id, and the primary hands new
    // connections to workers in turn.
    const servedBy = () => new Set(running!.logs().filter((l) => l.msg === 'request').map((l) => l.worker));
    // Log lines are buffered (flushed every second): keep asking for a while.
    for (let i = 0; i < 60 && servedBy().size < 2; i++) {
      await get(`${url}/readyz`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...servedBy()].sort()).toEqual([1, 2]);

    // One scrape answers for both workers (the primary aggregates): the discovery requests above
    // were served by two processes and are counted once each, in one series.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const discovery = metrics.split('\n').find((l) => l.startsWith('flowgate_http_request_duration_seconds_count{') && l.includes('route="/.well-known/openid-configuration"') && l.includes('status="200"'));
    expect(discovery?.split(' ').pop()).toBe('6');
    expect(metrics.match(/^flowgate_build_info\{/gm)).toHaveLength(1);

    // A worker that dies is replaced, and the port keeps answering.
    const started = () => running!.logs().filter((l) => l.msg === 'worker started');
    const victim = started().find((l) => l.worker === 1)!;
    process.kill(Number(victim.pid), 'SIGKILL');
    await running.waitFor(/"worker":3,"pid":\d+,"msg":"replacement worker listening"/);
    expect(running.logs().some((l) => l.msg === 'worker exited unexpectedly; starting a replacement' && l.worker === 1)).toBe(true);
    for (let i = 0; i < 4; i++) expect((await get(`${url}/.well-known/openid-configuration`)).status).toBe(200);
    // The replacement does not seed or hand out credentials again.
    expect(running.stdout.match(/"msg":"first start:/g)).toHaveLength(1);

    expect(await running.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const stopped = running.logs().filter((l) => l.msg === 'shutting down: finishing in-flight requests');
    expect(stopped.map((l) => l.worker).sort()).toEqual([2, 3]);
  }, 120_000);

  it('refuses WORKERS=2 on the embedded database with a message naming WORKERS', async () => {
    const p = npmStart({ WORKERS: '2', NODE_ENV: 'development', DATA_DIR: path.join(dir, 'embedded'), KEYS_DIR: path.join(dir, 'keys'), PORT: String(await freePort()) });
    expect(await p.exited).toEqual({ code: 2, signal: null });
    expect(p.stderr).toMatch(/WORKERS: 2 workers need DATABASE_URL \(embedded PGlite is single-process\)/);
  }, 60_000);
});
