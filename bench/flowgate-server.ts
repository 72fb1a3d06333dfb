// Flowgate as the benchmark runs it: one process, on PostgreSQL and Redis, seeded with one
// credential of each kind. It runs the compiled server (dist/, what `npm start` runs), not the TypeScript
// sources: transpiling at run time costs memory and start-up a production process does not pay.
// Prints what the load generator needs as one JSON line on stdout.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { Config } from '../src/config/schema.js';

type Dist<T> = Promise<T>;
const dist = (m: string) => `../dist/src/${m}.js`;
const { loadConfig } = await (import(dist('config/load')) as Dist<typeof import('../src/config/load.js')>);
const { createLogger } = await (import(dist('http/logger')) as Dist<typeof import('../src/http/logger.js')>);
const { startTracing } = await (import(dist('tracing/index')) as Dist<typeof import('../src/tracing/index.js')>);

// BENCH_OTLP_ENDPOINT: the same server with OpenTelemetry on (spans exported to that URL). Tracing
// hooks module loading, so everything that loads pg or ioredis is imported after it starts.
const tracing = process.env.BENCH_OTLP_ENDPOINT
  ? await startTracing({ tracing: { otlpEndpoint: process.env.BENCH_OTLP_ENDPOINT, serviceName: 'flowgate-bench', sampleRatio: 1 } } as Config)
  : undefined;
const { default: pg } = await import('pg');
const { startServer } = await (import(dist('server')) as Dist<typeof import('../src/server.js')>);
const { CLI_ACTOR } = await (import(dist('audit/service')) as Dist<typeof import('../src/audit/service.js')>);
const { JWT_BEARER } = await (import(dist('oauth/grants/jwt-bearer')) as Dist<typeof import('../src/oauth/grants/jwt-bearer.js')>);

const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
async function createDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `flowgate_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
    srv.on('error', reject);
  });
}

const port = await freePort();
const db = await createDatabase();
const keysDir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-bench-keys-'));
const config = loadConfig({
  NODE_ENV: 'production',
  PORT: String(port),
  HOST: '127.0.0.1',
  ISSUER: `http://127.0.0.1:${port}`,
  DATABASE_URL: db.url,
  REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  REDIS_PREFIX: `fgbench:${randomBytes(4).toString('hex')}:`,
  // The default level (info: one request line per request), unless a row asks for another.
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
  COOKIE_SECRETS: randomBytes(32).toString('base64url'),
  API_KEY_PEPPER: randomBytes(32).toString('base64url'),
  KEYS_DIR: keysDir,
  SEED_DEV_DATA: 'false',
  // Production serves /metrics on its own port; any free one here (several servers run at once).
  METRICS_PORT: '0',
  // The token endpoint is limited per client (300/min by default); the benchmark measures issuance,
  // so the limit is raised out of the way while the check itself (one Redis round trip) still runs.
  RATE_LIMITS: JSON.stringify({ token: { limit: 1_000_000, window: '1m' } }),
  // For experiments only (the bench runs the defaults): BENCH_RATE_LIMIT_ENABLED=false.
  RATE_LIMIT_ENABLED: process.env.BENCH_RATE_LIMIT_ENABLED ?? 'true',
});
const server = await startServer(config, createLogger(config.logLevel));
const s = server.services;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const url = server.url;

const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'Bench', plan: 'enterprise' });
const rs = await s.clients.create(CLI_ACTOR, { orgId: org.id, name: 'rs', grantTypes: ['client_credentials'], introspect: true });
const app = await s.clients.create(CLI_ACTOR, { orgId: org.id, name: 'app', grantTypes: ['client_credentials'], scope: 'workflows:read runs:read' });
const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
const publicJwk = { ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig', kid: 'bench' };
const svc = await s.clients.create(CLI_ACTOR, {
  orgId: org.id,
  name: 'svc',
  grantTypes: ['client_credentials', JWT_BEARER],
  authMethod: 'private_key_jwt',
  jwks: { keys: [publicJwk] },
  scope: 'workflows:read workflows:execute',
});
const { key: apiKey } = await s.apiKeys.create({ actor: CLI_ACTOR }, org.id, { name: 'bench', preset: 'read_only' } as any);
// A key whose own limit (an override, the most a key may have) stays above what the run sends: every
// rate-limited request of it is admitted and counted, the case that costs a Redis script each.
const { key: roomyKey, apiKey: roomy } = await s.apiKeys.create({ actor: CLI_ACTOR }, org.id, { name: 'bench-roomy', preset: 'read_only' } as any);
await s.rateLimits.policies.setKeyLimits(roomy.id, { read: { limit: 1_000_000, window: '1m' } });

const token = async (extra: Record<string, string>) => {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { authorization: basic(app.client.client_id, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'workflows:read', ...extra }).toString(),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`token request failed: ${JSON.stringify(body)}`);
  return body.access_token;
};
const opaqueToken = await token({});
const jwtToken = await token({ resource: config.apiAudience });
const serviceJwt = await new SignJWT({ scope: 'workflows:read' })
  .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
  .setIssuer(svc.client.client_id)
  .setSubject(svc.client.client_id)
  .setAudience(config.apiAudience)
  .setIssuedAt()
  .setJti(randomBytes(8).toString('hex'))
  .setExpirationTime('50m')
  .sign(privateKey);

process.stdout.write(
  `${JSON.stringify({
    url,
    issuer: config.issuer,
    rsAuth: basic(rs.client.client_id, rs.clientSecret!),
    appAuth: basic(app.client.client_id, app.clientSecret!),
    svcClientId: svc.client.client_id,
    svcPrivateJwk: await exportJWK(privateKey),
    opaqueToken,
    jwtToken,
    apiKey,
    roomyKey,
    serviceJwt,
    // For the cold-key rows, which the load generator writes to the table itself (not in this process,
    // whose memory is measured): the database, the organization, the pepper and the key prefix.
    databaseUrl: db.url,
    orgId: org.id,
    pepper: config.apiKeys.pepper,
    keyPrefix: config.apiKeys.prefix,
    pid: process.pid,
  })}\n`,
);

// SIGUSR2: what holds the memory (process.memoryUsage and V8's heap spaces, MB) on stderr, and with
// BENCH_HEAP_SNAPSHOTS=<dir> a heap snapshot there, for the closing note's before/after comparison.
process.on('SIGUSR2', async () => {
  const mb = (n: number) => Math.round(n / 2 ** 20);
  const v8 = await import('node:v8');
  const usage = Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mb(v)]));
  // With --expose-gc: what is still reachable after a full collection (live data, not the high-water mark).
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const afterGc = gc ? Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mb(v)])) : undefined;
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, mb(x.space_used_size)]));
  const snapshot = process.env.BENCH_HEAP_SNAPSHOTS ? v8.writeHeapSnapshot(path.join(process.env.BENCH_HEAP_SNAPSHOTS, `flowgate-${Date.now()}.heapsnapshot`)) : undefined;
  process.stderr.write(`${JSON.stringify({ memory: usage, afterGc, heapSpaces: spaces, snapshot })}\n`);
});

const stop = async () => {
  await server.close();
  await tracing?.shutdown().catch(() => {});
  await db.drop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
