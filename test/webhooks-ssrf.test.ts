import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { startReceiver } from './support/webhook-receiver.js';
import { CLI_ACTOR } from '../src/audit/service.js';

// A server with the SSRF guard on (the default): refused at registration, and again at delivery.
let env: TestEnv;
let key: string;
let orgId: string;
beforeAll(async () => {
  env = await startTestServer({ WEBHOOK_POLL_INTERVAL_MS: '150' });
  const s = env.server.services;
  orgId = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'ssrf' })).id;
  key = (await s.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'k', scopes: ['webhooks:manage'] })).key;
});
afterAll(async () => env?.close());

const create = (url: string) => request(env.url).post('/api/v1/webhooks').set('x-api-key', key).send({ url });

describe('webhook URL refusals', () => {
  it('logs no private-network warning when the guard is on', () => {
    expect(env.logs.text).not.toMatch(/ALLOW_PRIVATE_NETWORKS is on/);
  });

  it.each([
    ['http://169.254.169.254/', /^url host "169\.254\.169\.254" is not allowed/],
    ['http://10.0.0.1/', /^url host "10\.0\.0\.1" is not allowed/],
    // A name is refused without saying where it points (no internal DNS oracle).
    ['https://localhost/hook', /^url host "localhost" is not allowed: it must resolve to public addresses only$/],
    ['https://[::ffff:127.0.0.1]/', /is not allowed/],
    ['https://[64:ff9b:1::7f00:1]/', /is not allowed/],
    ['https://[::ffff:0:7f00:1]/', /is not allowed/],
    ['file:///etc/passwd', /scheme "file" is not allowed/],
    ['ftp://example.com/file', /scheme "ftp" is not allowed/],
  ])('refuses %s', async (url, message) => {
    const r = await create(url).expect(400);
    expect(r.body).toMatchObject({ success: false, error: { code: 'INVALID_WEBHOOK_URL' } });
    expect(r.body.error.message).toMatch(message);
    expect(r.body.error.message).not.toMatch(/resolves to (127|::1)/);
  });

  it('refuses a URL changed to a private address by PATCH', async () => {
    const s = env.server.services;
    // Stored directly (as if DNS had changed since registration): the API cannot register it.
    const rx = await startReceiver();
    try {
      const id = '00000000-0000-4000-8000-000000000001';
      await s.ds.query(`INSERT INTO webhook_endpoints (id, org_id, url, secret_enc) VALUES ($1, $2, $3, $4)`, [id, orgId, rx.url, (s.webhooks as any).box.seal('whsec_AAAA')]);
      const p = await request(env.url).patch(`/api/v1/webhooks/${id}`).set('x-api-key', key).send({ url: 'http://192.168.0.10/' }).expect(400);
      expect(p.body.error.code).toBe('INVALID_WEBHOOK_URL');

      // ...and at delivery: the dispatcher checks again and never connects.
      await request(env.url).post(`/api/v1/webhooks/${id}/test`).set('x-api-key', key).expect(202);
      let d: any;
      for (let i = 0; i < 50; i++) {
        d = (await request(env.url).get(`/api/v1/webhooks/${id}/deliveries`).set('x-api-key', key).expect(200)).body.data[0];
        if (d.attempts.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(d.attempts[0].error).toMatch(/^refused: .*127\.0\.0\.1/);
      expect(rx.received).toHaveLength(0);
    } finally {
      await rx.close();
    }
  });
});
