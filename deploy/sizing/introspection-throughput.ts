/**
 * Sizing per 1,000 introspections per second: one Flowgate process (production settings:
 * NODE_ENV=production, LOG_LEVEL=info, rate limiting on) on PostgreSQL and Redis, driven by
 * autocannon from this process; the server's CPU time (from /proc) and resident memory are read
 * around each run, so the figure is CPU-milliseconds per introspection, which a busy machine skews
 * far less than requests per second.
 *
 *   node --import tsx deploy/sizing/introspection-throughput.ts      (SIZING_DURATION=15 by default)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { CLI_ACTOR } from '../../src/audit/service.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/http/logger.js';
import { buildServices } from '../../src/compose/services.js';
import { freePort, projectRoot } from '../../test/support/process.js';
import { createTestDatabase, TEST_REDIS_URL } from '../../test/support/server.js';

const DURATION = Number(process.env.SIZING_DURATION ?? 15);
const CONNECTIONS = Number(process.env.SIZING_CONNECTIONS ?? 32);
const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

const db = await createTestDatabase();
const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-sizing-'));
const port = await freePort();
const env: Record<string, string> = {
  NODE_ENV: 'production',
  PORT: String(port),
  HOST: '127.0.0.1',
  ISSUER: `http://127.0.0.1:${port}`,
  DATABASE_URL: db.url,
  REDIS_URL: TEST_REDIS_URL,
  REDIS_PREFIX: `fgsizing:${randomBytes(4).toString('hex')}:`,
  COOKIE_SECRETS: randomBytes(32).toString('base64url'),
  API_KEY_PEPPER: randomBytes(32).toString('base64url'),
  KEYS_DIR: path.join(dir, 'keys'),
  DATA_DIR: path.join(dir, 'data'),
  LOG_LEVEL: 'info',
  SEED_DEV_DATA: 'false',
  RATE_LIMITS: JSON.stringify({ token: { limit: 1_000_000, window: 60 } }),
};

// Fixtures through the service layer, as the CLI creates them.
const s = await buildServices(loadConfig(env), createLogger('silent'));
const orgId = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Sizing', plan: 'enterprise' })).id;
const { client: rsRow, clientSecret: rsSecret } = await s.clients.create(CLI_ACTOR, { name: 'rs', orgId, redirectUris: [], grantTypes: ['client_credentials'], introspect: true } as never);
const { client: appRow, clientSecret: appSecret } = await s.clients.create(CLI_ACTOR, { name: 'app', orgId, redirectUris: [], grantTypes: ['client_credentials'], scope: 'workflows:read' } as never);
const { key, apiKey } = await s.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'sizing', preset: 'read_only' } as never);
await s.rateLimits.policies.setKeyLimits(apiKey.id, { read: { limit: 100_000_000, window: 60 } });
await s.close();

const server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: projectRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  if ((await fetch(`${base}/readyz`).then((r) => r.status, () => 0)) === 200) break;
  if (i > 600) throw new Error('server did not get ready');
  await new Promise((r) => setTimeout(r, 100));
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const tok = await fetch(`${base}/token`, {
  method: 'POST',
  headers: { authorization: basic(appRow.client_id, appSecret!), 'content-type': 'application/x-www-form-urlencoded' },
  body: 'grant_type=client_credentials&scope=workflows:read',
}).then((r) => r.json() as Promise<{ access_token: string }>);

function cpuTicks(): number {
  const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}
function rssMiB(): number {
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))![1]) / 1024);
}

async function measure(name: string, body: string) {
  const opts = { url: `${base}/token/introspection`, method: 'POST' as const, headers: { authorization: basic(rsRow.client_id, rsSecret!), 'content-type': 'application/x-www-form-urlencoded' }, body, connections: CONNECTIONS };
  await autocannon({ ...opts, duration: 3 }); // warm-up
  const t0 = cpuTicks();
  const r = await autocannon({ ...opts, duration: DURATION });
  const cpuSeconds = (cpuTicks() - t0) / TICK;
  const requests = r.requests.total;
  return {
    name,
    rps: Math.round(r.requests.average),
    p99ms: r.latency.p99,
    non2xx: r.non2xx + r.errors,
    cpuMsPerIntrospection: +((cpuSeconds * 1000) / requests).toFixed(3),
    coresPer1000PerSecond: +((cpuSeconds / requests) * 1000).toFixed(2),
    rssMiB: rssMiB(),
  };
}

const results = [
  await measure('API key, rate-limit category (one Redis script per request)', new URLSearchParams({ token: key, ratelimit_category: 'read' }).toString()),
  await measure('API key, no rate-limit category (cache only)', new URLSearchParams({ token: key }).toString()),
  await measure('opaque access token', new URLSearchParams({ token: tok.access_token }).toString()),
];
console.log(JSON.stringify({ node: process.version, cpus: os.cpus().length, loadavg: os.loadavg().map((l) => +l.toFixed(1)), durationSeconds: DURATION, connections: CONNECTIONS, results }, null, 2));

server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
await db.drop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
