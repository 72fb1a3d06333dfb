import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startTestServer, type TestEnv } from './support/server.js';
import { startReceiver } from './support/webhook-receiver.js';
import { CLI_ACTOR } from '../src/audit/service.js';

// Real Flowgate (PostgreSQL, Redis), real receiver on 127.0.0.1, Standard Webhooks' own verifier.
let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RETRY_SCHEDULE: '1,1,1', WEBHOOK_POLL_INTERVAL_MS: '150' });
});
afterAll(async () => env?.close());

/** Retries an assertion until it passes (the dispatcher records an attempt just after the receiver answers). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

let n = 0;
async function newOrg() {
  return env.server.services.accounts.createOrganization(CLI_ACTOR, { name: `org-${++n}-${Date.now()}` });
}
async function addMember(orgId: string) {
  return env.server.services.accounts.createUser(CLI_ACTOR, { email: `u${++n}-${Date.now()}@example.com`, password: 'correct horse battery', orgId, role: 'member' });
}

describe('webhook delivery', () => {
  it('logs a warning at start-up when private networks are allowed', () => {
    expect(env.logs.text).toMatch(/OUTBOUND_ALLOW_PRIVATE_NETWORKS is on/);
  });

  it('delivers member.added signed per Standard Webhooks and with the hex form, without secrets', async () => {
    const rx = await startReceiver();
    try {
      const org = await newOrg();
      const { secret, endpoint } = await env.server.services.webhooks.create(CLI_ACTOR, org.id, { url: rx.url });
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
      expect(Buffer.from(secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
      expect(endpoint.events).toBeNull();
      const { user } = await addMember(org.id);
      await rx.waitFor((r) => r.some((x) => JSON.parse(x.body).type === 'member.added'));
      const hit = rx.received.find((x) => JSON.parse(x.body).type === 'member.added')!;

      // An implementation that is not Flowgate's accepts it unchanged.
      const payload = new Webhook(secret).verify(hit.body, hit.headers as Record<string, string>) as any;
      expect(payload.type).toBe('member.added');
      expect(payload.data).toMatchObject({ id: user.id, object: 'user', organization_id: org.id, actor: { type: 'cli' } });
      expect(payload.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
      // The simple form: hex HMAC of the raw body with the same secret bytes.
      const hex = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(hit.body).digest('hex');
      expect(hit.headers['x-flowgate-signature']).toBe(`sha256=${hex}`);
      expect(hit.headers['webhook-id']).toMatch(/^msg_[0-9a-f-]{36}$/);
      expect(hit.body).not.toMatch(/password|whsec_/i);
      // A wrong secret is refused by the same library.
      expect(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(hit.body, hit.headers as Record<string, string>)).toThrow();

      const d = await eventually(async () => {
        const x = (await env.server.services.webhooks.listDeliveries(org.id, endpoint.id)).find((y) => y.event_type === 'member.added')!;
        expect(x.status).toBe('delivered');
        return x;
      });
      expect(d.attempts).toHaveLength(1);
      expect(d.attempts[0]).toMatchObject({ status_code: 200, error: null });
      expect(d.attempts[0].latency_ms).toBeGreaterThanOrEqual(0);
    } finally {
      await rx.close();
    }
  });

  it('retries 500, 500, then 200: delivered on the third attempt with the same webhook-id', async () => {
    const rx = await startReceiver((i) => (i <= 2 ? 500 : 200));
    try {
      const org = await newOrg();
      const { endpoint } = await env.server.services.webhooks.create(CLI_ACTOR, org.id, { url: rx.url, events: ['member.added'] });
      await addMember(org.id);
      await rx.waitFor((r) => r.length >= 3);
      const ids = rx.received.map((r) => r.headers['webhook-id']);
      expect(new Set(ids).size).toBe(1);
      // Backoff: at least ~1 s between attempts (schedule "1,1,1").
      expect(rx.received[1].at - rx.received[0].at).toBeGreaterThanOrEqual(900);
      const [d] = await eventually(async () => {
        const list = await env.server.services.webhooks.listDeliveries(org.id, endpoint.id);
        expect(list[0].status).toBe('delivered');
        return list;
      });
      expect(d.attempt_count).toBe(3);
      expect(d.attempts.map((a) => a.status_code)).toEqual([500, 500, 200]);
      expect(d.attempts[0].error).toBe('HTTP 500');
      expect(rx.received).toHaveLength(3);
    } finally {
      await rx.close();
    }
  });

  it('marks the delivery failed after the last retry, and a manual retry sends it again', async () => {
    const rx = await startReceiver(() => 503);
    try {
      const org = await newOrg();
      const { endpoint } = await env.server.services.webhooks.create(CLI_ACTOR, org.id, { url: rx.url });
      await addMember(org.id);
      await rx.waitFor((r) => r.length >= 4, 20_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(rx.received).toHaveLength(4); // 1 + 3 retries
      const [d] = await env.server.services.webhooks.listDeliveries(org.id, endpoint.id);
      expect(d.status).toBe('failed');
      expect(d.attempts).toHaveLength(4);
      const ep = await env.server.services.webhooks.get(org.id, endpoint.id);
      expect(ep.failing_since).not.toBeNull();

      await env.server.services.webhooks.retryDelivery(CLI_ACTOR, org.id, endpoint.id, d.id);
      await rx.waitFor((r) => r.length >= 5);
      expect(rx.received[4].headers['webhook-id']).toBe(rx.received[0].headers['webhook-id']);
    } finally {
      await rx.close();
    }
  });

  it('disables an endpoint failing for 5 days and emits webhook_endpoint.disabled to the others', async () => {
    const bad = await startReceiver(() => 500);
    const good = await startReceiver();
    try {
      const org = await newOrg();
      const { endpoint } = await env.server.services.webhooks.create(CLI_ACTOR, org.id, { url: bad.url });
      await env.server.services.webhooks.create(CLI_ACTOR, org.id, { url: good.url, events: ['webhook_endpoint.disabled'] });
      await env.server.services.ds.query(`UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 minute' WHERE id = $1`, [endpoint.id]);
      await addMember(org.id);
      await good.waitFor((r) => r.length >= 1);
      const body = JSON.parse(good.received[0].body);
      expect(body.type).toBe('webhook_endpoint.disabled');
      expect(body.data).toMatchObject({ id: endpoint.id, object: 'webhook_endpoint', organization_id: org.id });
      const ep = await env.server.services.webhooks.get(org.id, endpoint.id);
      expect(ep.enabled).toBe(false);
      expect(ep.disabled_reason).toMatch(/failing since/);
    } finally {
      await bad.close();
      await good.close();
    }
  });

  it('during a secret rotation both secrets sign for 24 hours', async () => {
    const rx = await startReceiver();
    try {
      const org = await newOrg();
      const { endpoint, secret: oldSecret } = await env.server.services.webhooks.create(CLI_ACTOR, org.id, { url: rx.url });
      const { secret: newSecret, endpoint: after } = await env.server.services.webhooks.rotateSecret(CLI_ACTOR, org.id, endpoint.id);
      expect(newSecret).not.toBe(oldSecret);
      const left = Date.parse(after.previous_secret_expires_at!) - Date.now();
      expect(left).toBeGreaterThan(23.9 * 3600_000);
      expect(left).toBeLessThanOrEqual(24 * 3600_000);
      await env.server.services.webhooks.sendTest(CLI_ACTOR, org.id, endpoint.id);
      await rx.waitFor((r) => r.length >= 1);
      const hit = rx.received[0];
      expect(String(hit.headers['webhook-signature']).split(' ')).toHaveLength(2);
      for (const s of [oldSecret, newSecret]) {
        expect((new Webhook(s).verify(hit.body, hit.headers as Record<string, string>) as any).type).toBe('webhook.test');
      }
      // Past the overlap only the new secret signs.
      await env.server.services.ds.query(`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, [endpoint.id]);
      await env.server.services.webhooks.sendTest(CLI_ACTOR, org.id, endpoint.id);
      await rx.waitFor((r) => r.length >= 2);
      expect(() => new Webhook(oldSecret).verify(rx.received[1].body, rx.received[1].headers as Record<string, string>)).toThrow();
      expect(new Webhook(newSecret).verify(rx.received[1].body, rx.received[1].headers as Record<string, string>)).toBeTruthy();
    } finally {
      await rx.close();
    }
  });

  it('sends only the event types an endpoint subscribed to, and only to its own organization', async () => {
    const mine = await startReceiver();
    const other = await startReceiver();
    try {
      const org = await newOrg();
      const otherOrg = await newOrg();
      await env.server.services.webhooks.create(CLI_ACTOR, org.id, { url: mine.url, events: ['oauth_client.created'] });
      await env.server.services.webhooks.create(CLI_ACTOR, otherOrg.id, { url: other.url });
      await addMember(org.id); // not subscribed
      const { clientSecret } = await env.server.services.clients.create(CLI_ACTOR, { orgId: org.id, name: 'svc', redirectUris: [], grantTypes: ['client_credentials'] });
      expect(clientSecret).toBeTruthy();
      await mine.waitFor((r) => r.length >= 1);
      await new Promise((r) => setTimeout(r, 800));
      expect(mine.received.map((r) => JSON.parse(r.body).type)).toEqual(['oauth_client.created']);
      expect(JSON.parse(mine.received[0].body).data).not.toHaveProperty('client_secret');
      expect(mine.received[0].body).not.toContain(clientSecret!);
      expect(mine.received[0].body).not.toMatch(/secret_hash/);
      expect(other.received).toHaveLength(0);
    } finally {
      await mine.close();
      await other.close();
    }
  });
});
