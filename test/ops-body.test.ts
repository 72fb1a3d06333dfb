import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { startTestServer, type TestEnv } from './support/server.js';

// Body limits and malformed input on a real JSON endpoint (POST /api/v1/auth/api-keys), with a
// small BODY_LIMIT so "too large" is cheap to send.
let env: TestEnv;
let key: string;
beforeAll(async () => {
  env = await startTestServer({ BODY_LIMIT: '2kb' });
  const { accounts, apiKeys } = env.server.services;
  const org = await accounts.createOrganization(CLI_ACTOR, { name: 'Body limits' });
  ({ key } = await apiKeys.create({ actor: CLI_ACTOR }, org.id, { name: 'admin', preset: 'full_access' } as never));
});
afterAll(async () => env?.close());

const ENDPOINT = '/api/v1/auth/api-keys';

function expectShape(body: unknown, status: number, code: string, res: { status: number }) {
  expect(res.status).toBe(status);
  expect(body).toEqual({ success: false, error: { code, message: expect.any(String), ...((body as { error: { details?: unknown } }).error.details !== undefined && { details: expect.anything() }) } });
}

describe('JSON request bodies', () => {
  it('accepts a well-formed body (the endpoint works)', async () => {
    const r = await request(env.url).post(ENDPOINT).set('x-api-key', key).send({ name: 'ok', preset: 'read_only' });
    expect(r.status).toBe(201);
  });

  it('bad JSON answers 400 in the one JSON error shape', async () => {
    const r = await request(env.url).post(ENDPOINT).set('x-api-key', key).set('Content-Type', 'application/json').send('{"name": "x",');
    expectShape(r.body, 400, r.body.error?.code, r);
    expect(r.body.error.code).toMatch(/^(INVALID_JSON|BAD_REQUEST)$/);
    expect(r.body.error.message).toMatch(/JSON/);
  });

  it('an oversized body answers 413', async () => {
    const r = await request(env.url).post(ENDPOINT).set('x-api-key', key).send({ name: 'x'.repeat(5000), preset: 'read_only' });
    expectShape(r.body, 413, 'PAYLOAD_TOO_LARGE', r);
  });

  it('an oversized chunked body (no Content-Length) answers 413', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${env.url}${ENDPOINT}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key, 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.write('{"name":"');
      for (let i = 0; i < 8; i++) req.write('x'.repeat(512));
      req.end('","preset":"read_only"}');
    });
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({ success: false, error: { code: 'PAYLOAD_TOO_LARGE' } });
  });

  it('a non-JSON content type answers 415', async () => {
    const form = await request(env.url).post(ENDPOINT).set('x-api-key', key).type('form').send('name=x&preset=read_only');
    expectShape(form.body, 415, 'UNSUPPORTED_MEDIA_TYPE', form);
    const text = await request(env.url).post(ENDPOINT).set('x-api-key', key).set('Content-Type', 'text/plain').send('{"name":"x","preset":"read_only"}');
    expectShape(text.body, 415, 'UNSUPPORTED_MEDIA_TYPE', text);
  });

  it('a JSON value that is not an object answers 400', async () => {
    const r = await request(env.url).post(ENDPOINT).set('x-api-key', key).set('Content-Type', 'application/json').send('"name"');
    expect(r.status).toBe(400);
    expect(r.body.success).toBe(false);
  });
});
