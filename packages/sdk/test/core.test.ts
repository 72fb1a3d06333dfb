import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Flowgate, type AuthRequest } from '../src/core.js';
import { flowgateFetch } from '../src/fetch.js';

/**
 * The SDK's core against a stand-in for Flowgate's introspection endpoint that answers what each
 * test sets: how every answer (and every failure to answer) reaches the caller. The SDK against
 * the real server is test/sdk-package.test.ts.
 */
let answer: { status: number; body: unknown } = { status: 200, body: { active: false } };
let calls = 0;
let server: http.Server;
let issuer: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    calls++;
    req.resume();
    req.on('end', () => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const KEY = 'sk-' + 'a'.repeat(38);
const req = (headers: Record<string, string>, query: Record<string, string> = {}): AuthRequest => ({ headers, query, method: 'GET', route: '/x' });
const logged: string[] = [];
const make = (o: Partial<ConstructorParameters<typeof Flowgate>[0]> = {}) =>
  new Flowgate({ issuer, clientId: 'rs', clientSecret: 's3cret', cacheTtlMs: 0, logger: { error: (m) => logged.push(m) }, ...o });

describe('inactive credentials keep their reason', () => {
  it('expired: 401 EXPIRED_API_KEY with details.expired_at', async () => {
    answer = { status: 200, body: { active: false, inactive_reason: 'expired', expired_at: '2030-01-02T03:04:05.000Z' } };
    const out = await make().authenticate(req({ 'x-api-key': KEY }));
    expect(out.ok).toBe(false);
    if (!out.ok) expect([out.error.status, out.error.code, out.error.details]).toEqual([401, 'EXPIRED_API_KEY', { expired_at: '2030-01-02T03:04:05.000Z' }]);
  });

  it('query_key_disabled: 401 QUERY_API_KEY_DISABLED; revoked, rolled, unknown: INVALID_API_KEY', async () => {
    answer = { status: 200, body: { active: false, inactive_reason: 'query_key_disabled' } };
    const q = await make().authenticate(req({}, { 'api-key': KEY }));
    expect(!q.ok && q.error.code).toBe('QUERY_API_KEY_DISABLED');
    for (const reason of ['revoked', 'rolled', 'unknown']) {
      answer = { status: 200, body: { active: false, inactive_reason: reason } };
      const r = await make().authenticate(req({ authorization: `Bearer ${KEY}` }));
      expect(!r.ok && r.error.code, reason).toBe('INVALID_API_KEY');
    }
  });

  it('no reason: INVALID_API_KEY for a key-shaped credential, INVALID_TOKEN otherwise', async () => {
    answer = { status: 200, body: { active: false } };
    const key = await make().authenticate(req({ authorization: `Bearer ${KEY}` }));
    expect(!key.ok && key.error.code).toBe('INVALID_API_KEY');
    const token = await make().authenticate(req({ authorization: 'Bearer opaque-token-value' }));
    expect(!token.ok && [token.error.code, token.error.headers?.['WWW-Authenticate']]).toEqual(['INVALID_TOKEN', 'Bearer realm="flowgate"']);
  });

  it('this service refusing query keys itself: QUERY_API_KEY_DISABLED without asking Flowgate', async () => {
    const before = calls;
    const out = await make({ allowQuery: false }).authenticate(req({}, { 'api-key': KEY }));
    expect(!out.ok && out.error.message).toMatch(/This service does not accept API keys in the query string/);
    expect(calls).toBe(before);
  });
});

describe('requests whose credential cannot be read', () => {
  it('MULTIPLE_CREDENTIALS and MALFORMED_AUTHORIZATION (400) before any call to Flowgate', async () => {
    const before = calls;
    const multi = await make().authenticate(req({ authorization: `Bearer ${KEY}`, 'x-api-key': 'sk-' + 'b'.repeat(38) }));
    expect(!multi.ok && [multi.error.status, multi.error.code]).toEqual([400, 'MULTIPLE_CREDENTIALS']);
    const bad = await make().authenticate(req({ authorization: 'Bearer two words' }));
    expect(!bad.ok && [bad.error.status, bad.error.code]).toEqual([400, 'MALFORMED_AUTHORIZATION']);
    expect(calls).toBe(before);
  });

  it('the Fetch adapter sees a repeated x-api-key (joined by Headers) as several credentials', async () => {
    const { authenticate } = flowgateFetch({ issuer, clientId: 'rs', clientSecret: 's' });
    const headers = new Headers();
    headers.append('x-api-key', KEY);
    headers.append('x-api-key', 'sk-' + 'c'.repeat(38));
    const res = (await authenticate(new Request('http://svc/x', { headers }))) as Response;
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('MULTIPLE_CREDENTIALS');
  });
});

describe('when Flowgate does not answer about the credential', () => {
  it('401 or 403 from introspection: 500 AUTH_MISCONFIGURED, logged once with what to fix, never the secret', async () => {
    logged.length = 0;
    const fg = make();
    answer = { status: 401, body: { error: 'invalid_client', error_description: 'invalid client credentials' } };
    for (let i = 0; i < 3; i++) {
      const out = await fg.authenticate(req({ 'x-api-key': KEY }));
      expect(!out.ok && [out.error.status, out.error.code]).toEqual([500, 'AUTH_MISCONFIGURED']);
    }
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/check clientId and clientSecret/);
    expect(logged[0]).not.toContain('s3cret');
    answer = { status: 401, body: { error: 'invalid_client', error_description: 'client is not allowed to introspect' } };
    await fg.authenticate(req({ 'x-api-key': KEY }));
    expect(logged).toHaveLength(2);
    expect(logged[1]).toMatch(/introspection permission/);
    // Fixed, then broken again: told again.
    answer = { status: 200, body: { active: false } };
    await fg.authenticate(req({ 'x-api-key': KEY }));
    answer = { status: 401, body: { error: 'invalid_client', error_description: 'invalid client credentials' } };
    await fg.authenticate(req({ 'x-api-key': KEY }));
    expect(logged).toHaveLength(3);
  });

  it('5xx, a body that is not JSON, or nobody listening: 503 AUTH_UNAVAILABLE with Retry-After', async () => {
    for (const a of [{ status: 502, body: 'bad gateway' }, { status: 200, body: '<html>' }]) {
      answer = a;
      const out = await make().authenticate(req({ 'x-api-key': KEY }));
      expect(!out.ok && [out.error.status, out.error.code, out.error.headers?.['Retry-After']]).toEqual([503, 'AUTH_UNAVAILABLE', '1']);
    }
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const out = await make({ issuer: `http://127.0.0.1:${port}` }).authenticate(req({ 'x-api-key': KEY }));
    expect(!out.ok && out.error.code).toBe('AUTH_UNAVAILABLE');
  });

  it('a 400 about the presented token is an invalid credential, not an outage', async () => {
    answer = { status: 400, body: { error: 'invalid_request', error_description: 'token contains text no field accepts' } };
    const out = await make().authenticate(req({ 'x-api-key': 'sk-\u0000' }));
    expect(!out.ok && out.error.code).toBe('INVALID_API_KEY');
  });
});

describe('introspection cache', () => {
  it('reuses a positive answer within cacheTtlMs, never past the credential\'s expiry, and never with rate limits on', async () => {
    answer = { status: 200, body: { active: true, credential_type: 'api_key', scope: 'workflows:read', org_id: 'o1', exp: Math.floor(Date.now() / 1000) + 60 } };
    const fg = make({ cacheTtlMs: 5000 });
    const before = calls;
    for (let i = 0; i < 3; i++) expect((await fg.authenticate(req({ 'x-api-key': KEY }))).ok).toBe(true);
    expect(calls - before).toBe(1);
    const limited = make({ cacheTtlMs: 5000, rateLimit: true });
    const b2 = calls;
    for (let i = 0; i < 3; i++) await limited.authenticate(req({ 'x-api-key': KEY }));
    expect(calls - b2).toBe(3);
  });
});
