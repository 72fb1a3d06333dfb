import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { Webhook } from 'standardwebhooks';
import { startTestServer, type TestEnv } from './support/server.js';
import { startReceiver } from './support/webhook-receiver.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import type { Principal } from '../src/auth/principal.js';

// The management API with real API keys: access rules, tenant boundaries, secrets shown once.
let env: TestEnv;
let rx: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  env = await startTestServer({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_INTERVAL_MS: '150' });
  rx = await startReceiver();
});
afterAll(async () => {
  await rx?.close();
  await env?.close();
});

let n = 0;
async function org() {
  const s = env.server.services;
  const o = await s.accounts.createOrganization(CLI_ACTOR, { name: `org-${++n}-${Date.now()}` });
  const key = async (scopes: string[], role?: 'member' | 'admin') => {
    let principal: Principal | undefined;
    if (role) {
      const { user } = await s.accounts.createUser(CLI_ACTOR, { email: `u${++n}-${Date.now()}@example.com`, password: 'correct horse battery', orgId: o.id, role });
      principal = { kind: 'session', orgId: o.id, userId: user.id, role, scopes: ['api_keys:write', ...scopes] };
    }
    return (await s.apiKeys.create({ actor: CLI_ACTOR, principal }, o.id, { name: 'k', scopes })).key;
  };
  return { id: o.id, key };
}

const api = () => request(env.url);

describe('webhooks API', () => {
  it('needs a credential, the webhooks:manage scope, and an owner or admin', async () => {
    const a = await org();
    const none = await api().get('/api/v1/webhooks').expect(401);
    expect(none.body).toMatchObject({ success: false, error: { code: 'MISSING_API_KEY' } });
    const readOnly = await a.key(['workflows:read']);
    const r = await api().get('/api/v1/webhooks').set('Authorization', `Bearer ${readOnly}`).expect(403);
    expect(r.body.error).toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', details: { required_scope: 'webhooks:manage' } });
    const memberKey = await a.key(['webhooks:manage'], 'member');
    const m = await api().post('/api/v1/webhooks').set('x-api-key', memberKey).send({ url: rx.url }).expect(403);
    expect(m.body.error.code).toBe('INSUFFICIENT_PERMISSIONS');
    const adminKey = await a.key(['webhooks:manage'], 'admin');
    await api().get('/api/v1/webhooks').set('x-api-key', adminKey).expect(200);
  });

  it('creates, reads, updates, tests, lists deliveries, retries and deletes an endpoint', async () => {
    const a = await org();
    const key = await a.key(['webhooks:manage']);
    const auth = { Authorization: `Bearer ${key}` };
    const c = await api().post('/api/v1/webhooks').set(auth).send({ url: rx.url, events: ['api_key.created', 'member.added'], description: 'ops' }).expect(201);
    expect(c.headers['cache-control']).toBe('no-store');
    const { id, secret } = c.body.data;
    expect(secret).toMatch(/^whsec_/);
    expect(c.body.data).toMatchObject({ url: rx.url, events: ['api_key.created', 'member.added'], description: 'ops', enabled: true });

    // The secret is shown once: never by GET or list.
    const g = await api().get(`/api/v1/webhooks/${id}`).set(auth).expect(200);
    expect(JSON.stringify(g.body)).not.toContain('whsec_');
    expect(g.body.data).not.toHaveProperty('secret');
    const l = await api().get('/api/v1/webhooks').set(auth).expect(200);
    expect(l.body.data.map((e: any) => e.id)).toEqual([id]);
    expect(JSON.stringify(l.body)).not.toContain('whsec_');

    const p = await api().patch(`/api/v1/webhooks/${id}`).set(auth).send({ description: 'ops team', events: null }).expect(200);
    expect(p.body.data).toMatchObject({ description: 'ops team', events: null });

    const t = await api().post(`/api/v1/webhooks/${id}/test`).set(auth).expect(202);
    expect(t.body.data).toMatchObject({ event_type: 'webhook.test', status: 'pending' });
    await rx.waitFor((r) => r.some((x) => x.headers['webhook-id'] === t.body.data.webhook_id));
    const hit = rx.received.find((x) => x.headers['webhook-id'] === t.body.data.webhook_id)!;
    expect((new Webhook(secret).verify(hit.body, hit.headers as Record<string, string>) as any).type).toBe('webhook.test');

    let deliveries: any[] = [];
    for (let i = 0; i < 50; i++) {
      deliveries = (await api().get(`/api/v1/webhooks/${id}/deliveries`).set(auth).expect(200)).body.data;
      if (deliveries[0]?.status === 'delivered') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(deliveries[0]).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(deliveries[0].attempts[0]).toMatchObject({ status_code: 200, error: null });

    await api().post(`/api/v1/webhooks/${id}/deliveries/${deliveries[0].id}/retry`).set(auth).expect(202);
    // Sent again under the same webhook-id.
    await rx.waitFor((r) => r.filter((x) => x.headers['webhook-id'] === t.body.data.webhook_id).length === 2);

    const rot = await api().post(`/api/v1/webhooks/${id}/rotate-secret`).set(auth).expect(200);
    expect(rot.body.data.secret).toMatch(/^whsec_/);
    expect(rot.body.data.secret).not.toBe(secret);
    expect(rot.body.data.previous_secret_expires_at).toBeTruthy();

    await api().delete(`/api/v1/webhooks/${id}`).set(auth).expect(200);
    await api().get(`/api/v1/webhooks/${id}`).set(auth).expect(404);
  });

  it('refuses unknown event types and invalid bodies with clear errors', async () => {
    const a = await org();
    const auth = { 'x-api-key': await a.key(['webhooks:manage']) };
    const e = await api().post('/api/v1/webhooks').set(auth).send({ url: rx.url, events: ['api_key.exploded'] }).expect(400);
    expect(e.body.error).toMatchObject({ code: 'INVALID_EVENT_TYPE', message: 'Unknown event type: api_key.exploded' });
    const v = await api().post('/api/v1/webhooks').set(auth).send({ events: [] }).expect(400);
    expect(v.body.error.code).toBe('VALIDATION_ERROR');
    const x = await api().post('/api/v1/webhooks').set(auth).send({ url: rx.url, secret: 'mine' }).expect(400);
    expect(x.body.error.code).toBe('VALIDATION_ERROR');
  });

  it('never crosses organizations: another organization\'s endpoint is not found', async () => {
    const a = await org();
    const b = await org();
    const ka = { 'x-api-key': await a.key(['webhooks:manage']) };
    const kb = { 'x-api-key': await b.key(['webhooks:manage']) };
    const id = (await api().post('/api/v1/webhooks').set(ka).send({ url: rx.url }).expect(201)).body.data.id;
    await api().get(`/api/v1/webhooks/${id}`).set(kb).expect(404);
    await api().patch(`/api/v1/webhooks/${id}`).set(kb).send({ description: 'mine now' }).expect(404);
    await api().post(`/api/v1/webhooks/${id}/rotate-secret`).set(kb).expect(404);
    await api().post(`/api/v1/webhooks/${id}/test`).set(kb).expect(404);
    await api().get(`/api/v1/webhooks/${id}/deliveries`).set(kb).expect(404);
    await api().delete(`/api/v1/webhooks/${id}`).set(kb).expect(404);
    expect((await api().get('/api/v1/webhooks').set(kb).expect(200)).body.data).toEqual([]);
    expect((await api().get(`/api/v1/webhooks/${id}`).set(ka).expect(200)).body.data.description).toBeNull();
  });

  it('delivers api_key.created from a key made through the API, without the key', async () => {
    const a = await org();
    const admin = { 'x-api-key': await a.key(['webhooks:manage', 'api_keys:write', 'api_keys:read']) };
    const { secret } = (await api().post('/api/v1/webhooks').set(admin).send({ url: rx.url, events: ['api_key.created', 'api_key.revoked'] }).expect(201)).body.data;
    const created = (await api().post('/api/v1/auth/api-keys').set(admin).send({ name: 'ci', scopes: ['api_keys:read'] }).expect(201)).body.data;
    await api().delete(`/api/v1/auth/api-keys/${created.id}`).set(admin).expect(200);
    const mine = () => rx.received.filter((r) => JSON.parse(r.body).data.organization_id === a.id);
    await rx.waitFor(() => mine().length >= 2);
    const bodies = mine().map((r) => new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as any);
    expect(bodies.map((b) => b.type).sort()).toEqual(['api_key.created', 'api_key.revoked']);
    expect(bodies[0].data).toMatchObject({ id: created.id, object: 'api_key', organization_id: a.id, actor: { type: 'api_key' } });
    for (const r of mine()) expect(r.body).not.toContain(created.key);
  });
});

describe('audit events API', () => {
  it('lists the organization\'s events newest first, with filters and cursor pagination', async () => {
    const a = await org();
    const b = await org();
    const key = await a.key(['audit:read']);
    await b.key(['audit:read']);
    const auth = { 'x-api-key': key };
    for (let i = 0; i < 3; i++) {
      await env.server.services.accounts.createUser(CLI_ACTOR, { email: `aud${++n}-${Date.now()}@example.com`, password: 'correct horse battery', orgId: a.id, role: 'member' });
    }
    const all = (await api().get('/api/v1/audit-events').set(auth).expect(200)).body;
    const actions = all.data.map((e: any) => e.action);
    expect(actions.slice(0, 4)).toEqual(['member.added', 'member.added', 'member.added', 'api_key.created']);
    expect(actions[actions.length - 1]).toBe('organization.created');
    expect(all.data.every((e: any) => e.target.id !== b.id)).toBe(true);
    expect(all.data[0]).toMatchObject({ event_type: 'member.added', actor: { type: 'cli', id: null } });
    const times = all.data.map((e: any) => Date.parse(e.created_at));
    expect([...times].sort((x, y) => y - x)).toEqual(times);

    const f = (await api().get('/api/v1/audit-events?action=member.added').set(auth).expect(200)).body.data;
    expect(f).toHaveLength(3);
    const p1 = (await api().get('/api/v1/audit-events?limit=2').set(auth).expect(200)).body;
    expect(p1.data).toHaveLength(2);
    expect(p1.next_cursor).toBeTruthy();
    const p2 = (await api().get(`/api/v1/audit-events?limit=2&cursor=${p1.next_cursor}`).set(auth).expect(200)).body;
    expect(p2.data.map((e: any) => e.id)).toEqual(all.data.slice(2, 4).map((e: any) => e.id));
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await api().get(`/api/v1/audit-events?since=${encodeURIComponent(future)}`).set(auth).expect(200)).body.data).toEqual([]);
    expect((await api().get(`/api/v1/audit-events?until=${encodeURIComponent(future)}`).set(auth).expect(200)).body.data).toHaveLength(all.data.length);
    expect((await api().get('/api/v1/audit-events?actor=nobody').set(auth).expect(200)).body.data).toEqual([]);
    const bad = await api().get('/api/v1/audit-events?cursor=bogus').set(auth).expect(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    await api().get('/api/v1/audit-events?since=yesterday').set(auth).expect(400);
  });

  it('needs audit:read, and refuses members', async () => {
    const a = await org();
    const r = await api().get('/api/v1/audit-events').set('x-api-key', await a.key(['workflows:read'])).expect(403);
    expect(r.body.error.details).toMatchObject({ required_scope: 'audit:read' });
    await api().get('/api/v1/audit-events').set('x-api-key', await a.key(['audit:read'], 'member')).expect(403);
    await api().get('/api/v1/audit-events').set('x-api-key', await a.key(['audit:read'], 'admin')).expect(200);
  });

  it('has no way to change or delete an event', async () => {
    const a = await org();
    const auth = { 'x-api-key': await a.key(['audit:read']) };
    const [e] = (await api().get('/api/v1/audit-events').set(auth).expect(200)).body.data;
    for (const m of ['delete', 'patch', 'put'] as const) {
      const r = await api()[m](`/api/v1/audit-events/${e.id}`).set(auth);
      expect([404, 405]).toContain(r.status);
    }
  });
});
