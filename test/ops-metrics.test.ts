import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_METRICS_TOKEN, type TestEnv } from './support/server.js';
import { basicAuth, createClient, createOrg, tokenRequest } from './support/oauth.js';
import { freePort } from './support/process.js';
import { createKey, introspect } from './ratelimit-support.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { projectRoot } from './support/process.js';

let env: TestEnv;
let ownPort: TestEnv;
let metricsPort: number;
beforeAll(async () => {
  env = await startTestServer();
  metricsPort = await freePort();
  ownPort = await startTestServer({ METRICS_PORT: String(metricsPort), METRICS_TOKEN: '' });
});
afterAll(async () => {
  await env?.close();
  await ownPort?.close();
});

/** The value of one series (labels in any order), or undefined. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([^{\s]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('/metrics', () => {
  it('needs the bearer token on the main port, and is not served there at all without one', async () => {
    expect((await fetch(`${env.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${env.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
    expect((await fetch(`${env.url}/metrics`, { headers: { authorization: `Bearer ${TEST_METRICS_TOKEN}` } })).status).toBe(200);
    // With METRICS_PORT the main listener has no /metrics; the metrics port serves it.
    expect((await fetch(`${ownPort.url}/metrics`)).status).toBe(404);
    const r = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('defaults: production serves it on its own port; main-port metrics in production need a token', () => {
    const base = { NODE_ENV: 'production', COOKIE_SECRETS: 'x'.repeat(40), API_KEY_PEPPER: 'y'.repeat(20) };
    expect(loadConfig(base).metrics.port).toBe(9464);
    expect(() => loadConfig({ ...base, METRICS_PORT: 'off' })).toThrow(/METRICS_PORT: .*needs METRICS_TOKEN/);
    expect(loadConfig({ ...base, METRICS_PORT: 'off', METRICS_TOKEN: 'z'.repeat(32) }).metrics.port).toBeUndefined();
  });

  it('counts requests by route and status, tokens by grant, introspections by outcome, caches, limits, stores, process and build', async () => {
    const orgId = await createOrg(env);
    const rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    const client = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [] });
    const { key } = await createKey(env, orgId);
    for (let i = 0; i < 3; i++) expect((await tokenRequest(env, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret!) })).status).toBe(200);
    expect((await tokenRequest(env, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, 'wrong') })).status).toBe(401);
    for (let i = 0; i < 2; i++) expect((await introspect(env, rs, key, { ratelimit_category: 'read' })).body.active).toBe(true);
    expect((await introspect(env, rs, 'sk-not-a-real-key')).body.active).toBe(false);
    await fetch(`${env.url}/api/v1/auth/api-keys/00000000-0000-0000-0000-000000000000`, { headers: { 'x-api-key': key } });
    await fetch(`${env.url}/no/such/path/${'x'.repeat(40)}`);

    const text = await env.metrics();
    expect(value(text, 'flowgate_http_request_duration_seconds_count', { route: '/token', method: 'POST', status: '200' })).toBeGreaterThanOrEqual(3);
    expect(value(text, 'flowgate_http_request_duration_seconds_count', { route: '/token/introspection', method: 'POST', status: '200' })).toBeGreaterThanOrEqual(3);
    expect(value(text, 'flowgate_http_request_duration_seconds_bucket', { route: '/token/introspection', le: '+Inf' })).toBeGreaterThanOrEqual(3);
    // Ids become :id; unknown paths are one series, whatever was asked.
    expect(value(text, 'flowgate_http_request_duration_seconds_count', { route: '/api/v1/auth/api-keys/:id', method: 'GET' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'flowgate_http_request_duration_seconds_count', { route: 'other', method: 'GET', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain('x'.repeat(40));

    expect(value(text, 'flowgate_tokens_issued_total', { grant_type: 'client_credentials' })).toBeGreaterThanOrEqual(3);
    expect(value(text, 'flowgate_token_errors_total', { grant_type: 'client_credentials', error: 'invalid_client' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'flowgate_introspections_total', { credential_type: 'api_key', outcome: 'active' })).toBeGreaterThanOrEqual(2);
    expect(value(text, 'flowgate_introspections_total', { outcome: 'inactive' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'flowgate_cache_lookups_total', { cache: 'credentials', result: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'flowgate_cache_lookups_total', { cache: 'credentials', result: 'miss' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'flowgate_cache_entries', { cache: 'credentials' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'flowgate_ratelimit_checks_total', { policy: 'read', result: 'allowed' })).toBeGreaterThanOrEqual(2);
    expect(value(text, 'flowgate_ratelimit_store_up', { store: 'redis' })).toBe(1);
    expect(value(text, 'flowgate_db_query_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThan(0);
    // Two servers run in this test process: the gauges add up their pools.
    expect(value(text, 'flowgate_db_pool_connections', { state: 'max' })).toBe(2 * env.config.database.poolSize);
    expect(value(text, 'flowgate_redis_command_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(value(text, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value(text, 'flowgate_build_info', { version: '0.1.0' })).toBe(1);
    expect(value(text, 'flowgate_signing_key_age_seconds', { alg: 'ES256' })).toBeGreaterThanOrEqual(0);
    expect(value(text, 'flowgate_draining')).toBe(0);
  });

  it('the Grafana dashboard under deploy/ queries only series Flowgate exports', async () => {
    const dashboard = readFileSync(path.join(projectRoot, 'deploy/grafana/flowgate-dashboard.json'), 'utf8');
    const used = new Set([...dashboard.matchAll(/\b((?:flowgate|nodejs|process)_[a-z0-9_]+?)(?:_bucket|_count|_sum)?\{/g)].map((m) => m[1]));
    expect(used.size).toBeGreaterThan(10);
    const text = await env.metrics();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });
});
