// Flowgate as the benchmark runs it: one process, on PostgreSQL and Redis, seeded with one
// credential of each kind. Prints what the load generator needs as one JSON line on stdout.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { pino } from 'pino';
import { createLogger } from '../src/http/logger.js';
import { startTracing } from '../src/tracing/index.js';

// BENCH_OTLP_ENDPOINT: the same server with OpenTelemetry on (spans exported to that URL). Tracing
// hooks module loading, so everything that loads pg or ioredis is imported after it starts.
const tracing = process.env.BENCH_OTLP_ENDPOINT
  ? await startTracing({ tracing: { otlpEndpoint: process.env.BENCH_OTLP_ENDPOINT, serviceName: 'flowgate-bench', sampleRatio: 1 } } as Config)
  : undefined;
const { startServer } = await import('../src/server.js');
const { CLI_ACTOR } = await import('../src/audit/service.js');
const { JWT_BEARER } = await import('../src/oauth/grants/jwt-bearer.js');
const { createTestDatabase } = await import('../test/support/server.js');
const { freePort } = await import('../test/support/process.js');

const port = await freePort();
const db = await createTestDatabase();
const keysDir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-bench-keys-'));
const config = loadConfig({
  NODE_ENV: 'production',
  PORT: String(port),
  HOST: '127.0.0.1',
  ISSUER: `http://127.0.0.1:${port}`,
  DATABASE_URL: db.url,
  REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  REDIS_PREFIX: `fgbench:${randomBytes(4).toString('hex')}:`,
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
  COOKIE_SECRETS: randomBytes(32).toString('base64url'),
  API_KEY_PEPPER: randomBytes(32).toString('base64url'),
  KEYS_DIR: keysDir,
  SEED_DEV_DATA: 'false',
  // Production serves /metrics on its own port; any free one here (several servers run at once).
  METRICS_PORT: '0',
  // The token endpoint is limited per client (300/min by default); the benchmark measures issuance,
  // so the limit is raised out of the way while the check itself (one Redis round trip) still runs.
  RATE_LIMITS: JSON.stringify({ token: { limit: 1_000_000_000, window: '1m' } }),
});
// BENCH_LOG_SYNC=1: pino's synchronous stdout (one write per line), to measure what buffering saves.
const server = await startServer(config, createLogger(config.logLevel, process.env.BENCH_LOG_SYNC === '1' ? pino.destination({ dest: 1, sync: true }) : undefined));
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
    serviceJwt,
  })}\n`,
);

const stop = async () => {
  await server.close();
  await tracing?.shutdown().catch(() => {});
  await db.drop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
