import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Koa from 'koa';
import request from 'supertest'; // the receiver under test is the SDK's app, not Flowgate (no /openapi.json)
import { Webhook } from 'standardwebhooks';
import { verifyFlowgateSignature, verifyWebhook, type VerifiedWebhook } from '@flowgate/sdk';
import { webhookReceiver } from '@flowgate/sdk/koa';
import { startTestServer, type TestEnv } from './support/server.js';
import { CLI_ACTOR } from '../src/audit/service.js';

// The SDK's receiving side: a real Koa service with webhookReceiver, fed by a real Flowgate and by
// requests signed with the standardwebhooks package.
const secret = `whsec_${randomBytes(32).toString('base64')}`;
const got: VerifiedWebhook[] = [];
let service: http.Server;
let serviceUrl: string;
let env: TestEnv;

beforeAll(async () => {
  const app = new Koa();
  app.use(async (ctx, next) => (ctx.path === '/hooks/wf_1' && ctx.method === 'POST' ? next() : undefined));
  app.use(webhookReceiver({ secret }));
  app.use(async (ctx) => {
    got.push(ctx.state.webhook!);
    ctx.body = { success: true };
  });
  service = http.createServer(app.callback());
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', () => r()));
  const a = service.address();
  serviceUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  env = await startTestServer({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_INTERVAL_MS: '150' });
});
afterAll(async () => {
  await env?.close();
  service?.closeAllConnections();
  await new Promise<void>((r) => service.close(() => r()));
});

const body = (type = 'api_key.created') => JSON.stringify({ type, timestamp: new Date().toISOString(), data: { id: 'k1' } });
function signed(raw: string, opts: { id?: string; at?: Date; key?: string } = {}) {
  const id = opts.id ?? `msg_${randomBytes(8).toString('hex')}`;
  const at = opts.at ?? new Date();
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(opts.key ?? secret).sign(id, at, raw),
  };
}
const post = (raw: string, headers: Record<string, string>) => request(serviceUrl).post('/hooks/wf_1').set(headers).send(raw);

describe('SDK webhook receiver', () => {
  it('accepts a request signed by a Standard Webhooks library', async () => {
    const raw = body();
    await post(raw, signed(raw)).expect(200);
    expect(got.at(-1)).toMatchObject({ type: 'api_key.created', data: { id: 'k1' } });
  });

  it('refuses a wrong signature, a changed body and a missing header in the documented error shape', async () => {
    const raw = body();
    const wrong = await post(raw, signed(raw, { key: `whsec_${randomBytes(32).toString('base64')}` })).expect(401);
    expect(wrong.body).toEqual({ success: false, error: { code: 'INVALID_WEBHOOK_SIGNATURE', message: 'The webhook signature does not match' } });
    const h = signed(raw);
    await post(body('api_key.revoked'), h).expect(401);
    const { 'webhook-signature': _drop, ...noSig } = h;
    const m = await post(raw, noSig).expect(400);
    expect(m.body.error).toMatchObject({ code: 'MISSING_WEBHOOK_HEADERS', details: { headers: ['webhook-signature'] } });
  });

  it('refuses a stale timestamp (more than 5 minutes) even when correctly signed', async () => {
    const raw = body();
    const old = await post(raw, signed(raw, { at: new Date(Date.now() - 301_000) })).expect(401);
    expect(old.body.error.code).toBe('WEBHOOK_TIMESTAMP_OUT_OF_RANGE');
    await post(raw, signed(raw, { at: new Date(Date.now() + 301_000) })).expect(401);
    await post(raw, signed(raw, { at: new Date(Date.now() - 240_000) })).expect(200);
  });

  it('refuses a replayed webhook-id', async () => {
    const raw = body();
    const h = signed(raw, { id: 'msg_replay_me' });
    await post(raw, h).expect(200);
    const again = await post(raw, h).expect(409);
    expect(again.body.error).toMatchObject({ code: 'WEBHOOK_REPLAYED', details: { webhook_id: 'msg_replay_me' } });
  });

  it('receives a real Flowgate delivery, and the hex form verifies too', async () => {
    const s = env.server.services;
    const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'sdk' });
    const { endpoint, secret: fgSecret } = await s.webhooks.create(CLI_ACTOR, org.id, { url: `${serviceUrl}/hooks/wf_1` });
    // A second workflow service holding Flowgate's generated secret.
    const app = new Koa();
    const seen: VerifiedWebhook[] = [];
    let hex = false;
    app.use(webhookReceiver({ secret: fgSecret }));
    app.use(async (ctx) => {
      seen.push(ctx.state.webhook!);
      hex = verifyFlowgateSignature(fgSecret, ctx.get('x-flowgate-signature'), ctx.state.webhookRawBody!);
      ctx.body = { ok: true };
    });
    const srv = http.createServer(app.callback());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const a = srv.address();
    try {
      await s.webhooks.update(CLI_ACTOR, org.id, endpoint.id, { url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/hooks/wf_1` });
      await s.webhooks.sendTest(CLI_ACTOR, org.id, endpoint.id);
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(seen[0]).toMatchObject({ type: 'webhook.test', data: { id: endpoint.id, organization_id: org.id } });
      expect(seen[0].id).toMatch(/^msg_/);
      expect(hex).toBe(true);
    } finally {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('verifyWebhook works without Koa, and accepts either secret during rotation', () => {
    const raw = body();
    const h = signed(raw);
    const other = `whsec_${randomBytes(32).toString('base64')}`;
    expect(verifyWebhook([other, secret], h, raw).type).toBe('api_key.created');
    expect(() => verifyWebhook(other, h, raw)).toThrow(/signature does not match/);
    expect(verifyFlowgateSignature(secret, 'sha256=00', raw)).toBe(false);
  });
});
