import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, createClient, createOrg, tokenRequest } from './support/oauth.js';
import { createKey, introspect } from './ratelimit-support.js';
import { sharedEnv, spawnFlowgate, type FlowgateProcess } from './support/drain-load.js';

// OpenTelemetry: off unless an OTLP endpoint is set; then the token endpoint, introspection, and the
// PostgreSQL and Redis calls under them arrive at the collector (here a local OTLP/HTTP JSON receiver).
interface Span {
  name: string;
  traceId: string;
  parentSpanId?: string;
  spanId: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}
let env: TestEnv;
let collector: http.Server;
let child: FlowgateProcess | undefined;
const spans: Span[] = [];

beforeAll(async () => {
  env = await startTestServer();
  collector = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && (req.headers['content-type'] ?? '').includes('json')) {
        const data = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: Span[] }[] }[] };
        for (const rs of data.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  await child?.stop('SIGKILL');
  collector?.close();
  await env?.close();
});

const attr = (s: Span, k: string) => {
  const v = s.attributes.find((a) => a.key === k)?.value;
  return v ? Object.values(v)[0] : undefined;
};

describe('tracing', () => {
  it('exports spans for the token endpoint and introspection with PostgreSQL and Redis children, never arguments', async () => {
    const port = (collector.address() as AddressInfo).port;
    child = await spawnFlowgate(sharedEnv(env, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` }));
    await child.ready();
    const orgId = await createOrg(env);
    const rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    const { key } = await createKey(env, orgId);
    const target = { ...env, url: child.url } as TestEnv;
    const token = await tokenRequest(target, { grant_type: 'client_credentials' }, { authorization: basicAuth(rs.clientId, rs.clientSecret!) });
    expect(token.status).toBe(200);
    expect((await introspect(env, rs, key, {}, child.url)).body.active).toBe(true);
    expect((await introspect(env, rs, token.body.access_token, {}, child.url)).body.active).toBe(true);

    // The batch processor exports within a few seconds; shutdown flushes the rest.
    expect(await child.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const names = spans.map((s) => s.name);
    expect(names).toContain('POST /token');
    expect(names.filter((n) => n === 'POST /token/introspection').length).toBeGreaterThanOrEqual(2);

    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const root = (s: Span): Span => (s.parentSpanId && byId.get(s.parentSpanId) ? root(byId.get(s.parentSpanId)!) : s);
    const pg = spans.filter((s) => attr(s, 'db.system') === 'postgresql' || attr(s, 'db.system.name') === 'postgresql');
    const redis = spans.filter((s) => attr(s, 'db.system') === 'redis' || attr(s, 'db.system.name') === 'redis');
    expect(pg.some((s) => root(s).name === 'POST /token/introspection')).toBe(true);
    expect(redis.some((s) => root(s).name === 'POST /token')).toBe(true);
    // Statements carry placeholders, Redis spans the command only: no key, token or hash.
    const all = JSON.stringify(spans);
    expect(all).not.toContain(token.body.access_token);
    expect(all).not.toContain(key);
    expect(all).not.toContain(rs.clientSecret!);
  }, 120_000);
});
