import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { Webhook } from 'standardwebhooks';
import { startTestServer, type TestEnv } from './support/server.js';
import { startReceiver } from './support/webhook-receiver.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { generateApiKey } from '../src/credentials/api-key-format.js';

// A secret scanner (GitHub-style partner) reports keys found in public: signed with its P-256 key.
const scanner = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KEY_ID = 'scanner-key-1';
let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer({
    OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
    WEBHOOK_POLL_INTERVAL_MS: '150',
    SECRET_SCANNER_PUBLIC_KEYS: JSON.stringify({ [KEY_ID]: scanner.publicKey.export({ type: 'spki', format: 'pem' }) }),
  });
});
afterAll(async () => env?.close());

function report(tokens: string[], opts: { signer?: typeof scanner.privateKey; keyId?: string; tamper?: boolean } = {}) {
  const raw = JSON.stringify(tokens.map((token) => ({ token, type: 'flowgate_api_key', url: 'https://github.com/x/y/blob/main/.env', source: 'content' })));
  const sig = sign('sha256', Buffer.from(raw), { key: opts.signer ?? scanner.privateKey, dsaEncoding: 'der' }).toString('base64');
  return request(env.url)
    .post('/api/v1/auth/api-keys/leaked')
    .set('content-type', 'application/json')
    .set('Github-Public-Key-Identifier', opts.keyId ?? KEY_ID)
    .set('Github-Public-Key-Signature', sig)
    .send(opts.tamper ? raw.replace('content', 'commit') : raw);
}

describe('leaked-key reports', () => {
  it('revokes a reported live key at once and sends api_key.leaked to its organization', async () => {
    const s = env.server.services;
    const rx = await startReceiver();
    try {
      const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'leaky' });
      const { key, apiKey } = await s.apiKeys.create({ actor: CLI_ACTOR }, org.id, { name: 'ci', scopes: ['webhooks:manage'] });
      const { secret } = await s.webhooks.create(CLI_ACTOR, org.id, { url: rx.url, events: ['api_key.leaked'] });
      await request(env.url).get('/api/v1/webhooks').set('x-api-key', key).expect(200);

      const r = await report([key]).expect(202);
      expect(r.body).toEqual({ success: true, data: { received: 1 } });
      const after = await request(env.url).get('/api/v1/webhooks').set('x-api-key', key).expect(401);
      expect(after.body.error.code).toBe('INVALID_API_KEY');

      await rx.waitFor((x) => x.length >= 1);
      const ev = new Webhook(secret).verify(rx.received[0].body, rx.received[0].headers as Record<string, string>) as any;
      expect(ev).toMatchObject({ type: 'api_key.leaked', data: { id: apiKey.id, organization_id: org.id, revoked: true, found_at: 'https://github.com/x/y/blob/main/.env' } });
      expect(rx.received[0].body).not.toContain(key);
    } finally {
      await rx.close();
    }
  });

  it('answers unknown and malformed keys exactly like known ones', async () => {
    const unknown = generateApiKey(env.config.apiKeys.prefix);
    const a = await report([unknown]).expect(202);
    const b = await report(['sk-not-even-a-key']).expect(202);
    expect(a.body).toEqual({ success: true, data: { received: 1 } });
    expect(b.body).toEqual(a.body);
  });

  it('refuses a forged report: another key, a tampered body, an unknown key id, no signature', async () => {
    const s = env.server.services;
    const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'target' });
    const { key } = await s.apiKeys.create({ actor: CLI_ACTOR }, org.id, { name: 'victim', scopes: ['webhooks:manage'] });
    for (const r of [report([key], { signer: forger.privateKey }), report([key], { tamper: true }), report([key], { keyId: 'nope' })]) {
      const res = await r.expect(401);
      expect(res.body).toEqual({ success: false, error: { code: 'INVALID_SIGNATURE', message: 'The report signature is missing or does not verify' } });
    }
    await request(env.url).post('/api/v1/auth/api-keys/leaked').set('content-type', 'application/json').send(JSON.stringify([{ token: key }])).expect(401);
    // The victim's key still works.
    await request(env.url).get('/api/v1/webhooks').set('x-api-key', key).expect(200);
  });
});
