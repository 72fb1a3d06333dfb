import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import request from 'supertest';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody, parseByteLimit, parseInput } from './body.js';
import { jsonErrors } from './errors.js';

// The middleware in a minimal Koa app, composed as src/app.ts composes /api/* routes.
let server: http.Server;
let url: string;
beforeAll(async () => {
  const app = new Koa();
  app.silent = true;
  app.use(jsonErrors);
  app.use(jsonBody({ limit: '1kb' }));
  app.use((ctx) => {
    if (ctx.path === '/validate') {
      const input = parseInput(z.object({ name: z.string().min(1), count: z.number().int() }), ctx.request.body);
      ctx.body = { ok: true, input };
      return;
    }
    ctx.body = { received: ctx.request.body ?? null };
  });
  server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** A POST with exactly these bytes and headers (supertest would re-encode a Buffer as JSON). */
function rawPost(body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/`, { method: 'POST', headers: { ...headers, 'Content-Length': String(body.length) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function expectShape(body: unknown, code: string) {
  expect(body).toMatchObject({ success: false, error: { code, message: expect.any(String) } });
}

describe('parseByteLimit', () => {
  it('reads b/kb/mb and refuses anything else', () => {
    expect(parseByteLimit('100kb')).toBe(102400);
    expect(parseByteLimit('2MB')).toBe(2 * 1024 * 1024);
    expect(parseByteLimit('10b')).toBe(10);
    expect(parseByteLimit(5)).toBe(5);
    expect(() => parseByteLimit('lots')).toThrow(/invalid body limit/);
  });
});

describe('jsonBody', () => {
  it('parses a JSON object', async () => {
    const r = await request(url).post('/').set('Content-Type', 'application/json; charset=utf-8').send('{"a":[1,2]}').expect(200);
    expect(r.body).toEqual({ received: { a: [1, 2] } });
  });

  it('accepts +json media types', async () => {
    const r = await request(url).post('/').set('Content-Type', 'application/merge-patch+json').send('{"a":1}').expect(200);
    expect(r.body).toEqual({ received: { a: 1 } });
  });

  it('treats an empty POST as {}', async () => {
    const r = await request(url).post('/').expect(200);
    expect(r.body).toEqual({ received: {} });
  });

  it('leaves GET alone', async () => {
    const r = await request(url).get('/').expect(200);
    expect(r.body).toEqual({ received: null });
  });

  it('answers 400 INVALID_JSON for malformed JSON', async () => {
    const r = await request(url).post('/').set('Content-Type', 'application/json').send('{"a":').expect(400);
    expectShape(r.body, 'INVALID_JSON');
  });

  it('answers 400 for a top-level scalar (strict JSON)', async () => {
    const r = await request(url).post('/').set('Content-Type', 'application/json').send('"just a string"').expect(400);
    expectShape(r.body, 'INVALID_JSON');
  });

  it('answers 400 for invalid UTF-8', async () => {
    const r = await rawPost(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), { 'Content-Type': 'application/json' });
    expect(r.status).toBe(400);
    expectShape(JSON.parse(r.body), 'INVALID_JSON');
  });

  it('answers 400 VALIDATION_ERROR for NUL or a lone surrogate anywhere, keys included, without echoing it', async () => {
    for (const raw of ['{"name":"a\\u0000b"}', '{"a":{"b":["\\ud800"]}}', '{"\\udc00":1}']) {
      const r = await request(url).post('/').set('Content-Type', 'application/json').send(raw).expect(400);
      expectShape(r.body, 'VALIDATION_ERROR');
      expect(JSON.stringify(r.body)).not.toMatch(/\\u0000|\\ud800|\\udc00/i);
    }
    const pair = await request(url).post('/').set('Content-Type', 'application/json').send('{"e":"\\ud83d\\ude80"}').expect(200);
    expect(pair.body).toEqual({ received: { e: '🚀' } });
  });

  it('answers 400 INVALID_JSON for nesting deeper than any input of ours', async () => {
    const r = await request(url).post('/').set('Content-Type', 'application/json').send('['.repeat(200) + ']'.repeat(200)).expect(400);
    expectShape(r.body, 'INVALID_JSON');
  });

  it('answers 415 for a non-JSON content type', async () => {
    const form = await request(url).post('/').type('form').send('a=1').expect(415);
    expectShape(form.body, 'UNSUPPORTED_MEDIA_TYPE');
    const none = await rawPost(Buffer.from('{"a":1}'), {});
    expect(none.status).toBe(415);
    expectShape(JSON.parse(none.body), 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 415 for a compressed body', async () => {
    const r = await request(url).post('/').set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send('{}').expect(415);
    expectShape(r.body, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 413 when Content-Length exceeds the limit', async () => {
    const r = await request(url).post('/').set('Content-Type', 'application/json').send(JSON.stringify({ a: 'x'.repeat(2000) })).expect(413);
    expectShape(r.body, 'PAYLOAD_TOO_LARGE');
    expect(r.body.error.details).toEqual({ limitBytes: 1024 });
  });

  it('answers 413 for a chunked body that grows past the limit', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${url}/`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.write('{"a":"');
      for (let i = 0; i < 4; i++) req.write('x'.repeat(512));
      req.end('"}');
    });
    expect(status).toBe(413);
    expectShape(JSON.parse(body), 'PAYLOAD_TOO_LARGE');
  });
});

describe('parseInput', () => {
  it('returns the parsed value', async () => {
    const r = await request(url).post('/validate').send({ name: 'x', count: 2 }).expect(200);
    expect(r.body).toEqual({ ok: true, input: { name: 'x', count: 2 } });
  });

  it('answers 400 VALIDATION_ERROR naming each field, without echoing the input', async () => {
    const r = await request(url).post('/validate').send({ name: '', count: 'secret-value-1' }).expect(400);
    expectShape(r.body, 'VALIDATION_ERROR');
    expect(r.body.error.details.issues.map((i: { path: string }) => i.path).sort()).toEqual(['count', 'name']);
    expect(JSON.stringify(r.body)).not.toContain('secret-value-1');
  });
});
