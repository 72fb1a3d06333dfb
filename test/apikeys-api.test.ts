import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { startTestServer, type TestEnv } from './support/server.js';
import type { Services } from '../src/compose/services.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { OrganizationEntity } from '../src/accounts/entities.js';
import type { Principal } from '../src/auth/principal.js';
import { API_KEY_SCOPES } from '../src/apikeys/presets.js';

let env: TestEnv;
let s: Services;
const issued: string[] = []; // every full key this file sees; none may reach the logs

let orgA: string;
let orgB: string;
let admin: { id: string; key: string }; // CLI-made full_access key of org A (acts as admin)
let member1: { userId: string; id: string; key: string };
let member2: { userId: string; id: string; key: string };
let otherOrgKey: { id: string; key: string };

const api = () => request(env.url);
const bearer = (k: string) => ({ Authorization: `Bearer ${k}` });

async function cliKey(orgId: string, input: Record<string, unknown>) {
  const { key, apiKey } = await s.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'k', ...input } as never);
  issued.push(key);
  return { id: apiKey.id, key };
}

/** A member's first key, as the dashboard would create it for a signed-in member (session principal). */
async function memberKey(orgId: string, email: string) {
  const { user } = await s.accounts.createUser(CLI_ACTOR, { email, password: 'correct horse battery', orgId, role: 'member' });
  const session: Principal = { kind: 'session', orgId, userId: user.id, role: 'member', scopes: API_KEY_SCOPES };
  const { key, apiKey } = await s.apiKeys.create({ actor: { type: 'user', id: user.id }, principal: session }, orgId, { name: `${email} key`, preset: 'full_access' });
  issued.push(key);
  return { userId: user.id, id: apiKey.id, key };
}

beforeAll(async () => {
  env = await startTestServer({ API_KEY_PREFIX: 'wfk_' });
  s = env.server.services;
  orgA = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Org A', plan: 'pro' })).id;
  orgB = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Org B', plan: 'pro' })).id;
  admin = await cliKey(orgA, { name: 'admin', preset: 'full_access' });
  member1 = await memberKey(orgA, 'm1@example.com');
  member2 = await memberKey(orgA, 'm2@example.com');
  otherOrgKey = await cliKey(orgB, { name: 'b admin', preset: 'full_access' });
});

afterAll(async () => {
  if (env) {
    const text = env.logs.text;
    expect(text.length).toBeGreaterThan(0);
    for (const k of issued) expect(text).not.toContain(k);
    await env.close();
  }
});

describe('accepting keys', () => {
  it('accepts a key as Bearer, x-api-key and api-key query parameter (prefix wfk_)', async () => {
    expect(admin.key.startsWith('wfk_')).toBe(true);
    const a = await api().get('/api/v1/auth/whoami').set(bearer(admin.key)).expect(200);
    expect(a.body).toMatchObject({ success: true, data: { kind: 'api_key', org_id: orgA, key_id: admin.id, credential_source: 'authorization', role: 'admin' } });
    const b = await api().get('/api/v1/auth/whoami').set('x-api-key', admin.key).expect(200);
    expect(b.body.data.credential_source).toBe('x-api-key');
    const c = await api().get(`/api/v1/auth/whoami?api-key=${admin.key}`).expect(200);
    expect(c.body.data.credential_source).toBe('query');
    expect(JSON.stringify([a.body, b.body, c.body])).not.toContain(admin.key);
    // The query form is logged with the key redacted.
    expect(env.logs.text).toContain('api-key=[redacted]');
  });

  it('answers 401 MISSING_API_KEY naming the header when nothing is sent', async () => {
    const r = await api().get('/api/v1/auth/api-keys').expect(401);
    expect(r.body).toEqual({ success: false, error: { code: 'MISSING_API_KEY', message: expect.any(String), details: { header: 'Authorization' } } });
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('answers 401 INVALID_API_KEY for made-up keys and garbage', async () => {
    for (const k of ['wfk_notakey', 'sk-ABCDEFGhijklmnoPQRSTuvwxyz1234567890ABCDEFG', `${admin.key.slice(0, -1)}${admin.key.endsWith('a') ? 'b' : 'a'}`]) {
      const r = await api().get('/api/v1/auth/whoami').set('x-api-key', k).expect(401);
      expect(r.body.error.code).toBe('INVALID_API_KEY');
    }
  });

  it('an organization can switch the query form off', async () => {
    const org = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'No query', plan: 'free' })).id;
    await s.ds.getRepository(OrganizationEntity).update({ id: org }, { settings: { allowQueryApiKey: false } });
    const k = await cliKey(org, { preset: 'read_only' });
    const r = await api().get(`/api/v1/auth/whoami?api-key=${k.key}`).expect(401);
    expect(r.body.error.code).toBe('QUERY_API_KEY_DISABLED');
    await api().get('/api/v1/auth/whoami').set('x-api-key', k.key).expect(200);
  });

  it('answers 401 EXPIRED_API_KEY with details.expired_at once a key expires', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const k = await cliKey(orgA, { preset: 'read_only', expires_at: expiresAt });
    await api().get('/api/v1/auth/whoami').set(bearer(k.key)).expect(200);
    await new Promise((r) => setTimeout(r, 1700));
    const r = await api().get('/api/v1/auth/whoami').set(bearer(k.key)).expect(401);
    expect(r.body.error).toMatchObject({ code: 'EXPIRED_API_KEY', details: { expired_at: expiresAt, key_id: k.id } });
    // Expired keys can be listed (marked) but not rolled back to life.
    const list = await api().get('/api/v1/auth/api-keys').set(bearer(admin.key)).expect(200);
    expect(list.body.data.find((v: { id: string }) => v.id === k.id).status).toBe('expired');
    await api().post(`/api/v1/auth/api-keys/${k.id}/roll`).set(bearer(admin.key)).send({}).expect(409);
  });
});

describe('restrictions', () => {
  it("another organization's key cannot act for, see or touch this organization", async () => {
    const who = await api().get(`/api/v1/auth/whoami?org_id=${orgA}`).set(bearer(otherOrgKey.key)).expect(403);
    expect(who.body.error).toMatchObject({ code: 'ORGANIZATION_ACCESS_DENIED', message: 'API key is not authorized for this organization' });
    await api().get(`/api/v1/auth/whoami?org_id=${orgB}`).set(bearer(otherOrgKey.key)).expect(200);
    const list = await api().get('/api/v1/auth/api-keys').set(bearer(otherOrgKey.key)).expect(200);
    expect(list.body.data.map((k: { id: string }) => k.id)).toEqual([otherOrgKey.id]);
    await api().get(`/api/v1/auth/api-keys/${admin.id}`).set(bearer(otherOrgKey.key)).expect(404);
    await api().patch(`/api/v1/auth/api-keys/${admin.id}`).set(bearer(otherOrgKey.key)).send({ name: 'x' }).expect(404);
    await api().post(`/api/v1/auth/api-keys/${admin.id}/roll`).set(bearer(otherOrgKey.key)).send({}).expect(404);
    await api().delete(`/api/v1/auth/api-keys/${admin.id}`).set(bearer(otherOrgKey.key)).expect(404);
    await api().get('/api/v1/auth/whoami').set(bearer(admin.key)).expect(200);
  });

  it('a workflow-restricted key works only for its workflow', async () => {
    const created = await api()
      .post('/api/v1/auth/api-keys')
      .set(bearer(admin.key))
      .send({ name: 'wf only', preset: 'read_write', workflow_id: 'wf_123' })
      .expect(201);
    issued.push(created.body.data.key);
    const k = created.body.data.key;
    const ok = await api().get('/api/v1/auth/whoami?workflow_id=wf_123&scope=workflows:execute').set('x-api-key', k).expect(200);
    expect(ok.body.data.workflow_id).toBe('wf_123');
    const r = await api().get('/api/v1/auth/whoami?workflow_id=wf_999').set('x-api-key', k).expect(403);
    expect(r.body).toEqual({ success: false, error: { code: 'WORKFLOW_ACCESS_DENIED', message: 'API key is not authorized for this workflow' } });
  });

  it('a missing scope answers 403 INSUFFICIENT_PERMISSIONS naming it', async () => {
    const ro = await cliKey(orgA, { preset: 'read_only' });
    const r = await api().get('/api/v1/auth/api-keys').set(bearer(ro.key)).expect(403);
    expect(r.body.error).toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', details: { required_scope: 'api_keys:read' } });
    expect(r.body.error.message).toContain('api_keys:read');
    const w = await api().get('/api/v1/auth/whoami?scope=workflows:write').set(bearer(ro.key)).expect(403);
    expect(w.body.error.details.required_scope).toBe('workflows:write');
  });

  it('a key cannot mint a key with scopes or reach it does not have itself', async () => {
    const manager = await cliKey(orgA, { scopes: ['api_keys:write', 'api_keys:read', 'workflows:read'], workflow_id: 'wf_1' });
    const wide = await api().post('/api/v1/auth/api-keys').set(bearer(manager.key)).send({ name: 'wider', preset: 'full_access' }).expect(403);
    expect(wide.body.error.code).toBe('INSUFFICIENT_PERMISSIONS');
    const other = await api().post('/api/v1/auth/api-keys').set(bearer(manager.key)).send({ name: 'w', scopes: ['workflows:read'], workflow_id: 'wf_2' }).expect(403);
    expect(other.body.error.code).toBe('WORKFLOW_ACCESS_DENIED');
    const ok = await api().post('/api/v1/auth/api-keys').set(bearer(manager.key)).send({ name: 'narrow', scopes: 'workflows:read' }).expect(201);
    issued.push(ok.body.data.key);
    expect(ok.body.data).toMatchObject({ scopes: ['workflows:read'], workflow_id: 'wf_1' });
  });

  it('a key cannot roll (and so obtain the secret of) a key reaching further than itself', async () => {
    const manager = await cliKey(orgA, { scopes: ['api_keys:write', 'api_keys:read', 'workflows:read'], workflow_id: 'wf_1' });
    const wider = await api().post(`/api/v1/auth/api-keys/${admin.id}/roll`).set(bearer(manager.key)).send({ grace_seconds: 0 }).expect(403);
    expect(wider.body.error.code).toBe('INSUFFICIENT_PERMISSIONS');
    expect(JSON.stringify(wider.body)).not.toMatch(/wfk_[0-9A-Za-z]{38}/);
    const otherWorkflow = await cliKey(orgA, { scopes: ['workflows:read'], workflow_id: 'wf_2' });
    const unrestricted = await cliKey(orgA, { scopes: ['workflows:read'] });
    for (const k of [otherWorkflow, unrestricted]) {
      const r = await api().post(`/api/v1/auth/api-keys/${k.id}/roll`).set(bearer(manager.key)).send({ grace_seconds: 0 }).expect(403);
      expect(r.body.error.code).toBe('WORKFLOW_ACCESS_DENIED');
    }
    // Nothing was rolled: the old secrets still work.
    for (const k of [admin, otherWorkflow, unrestricted]) await api().get('/api/v1/auth/whoami').set(bearer(k.key)).expect(200);
    const within = await cliKey(orgA, { scopes: ['workflows:read'], workflow_id: 'wf_1' });
    const rolled = await api().post(`/api/v1/auth/api-keys/${within.id}/roll`).set(bearer(manager.key)).send({ grace_seconds: 0 }).expect(200);
    issued.push(rolled.body.data.key);
  });
});

describe('management API', () => {
  it('creates a key shown once, lists it masked as prefix…last4, validates input', async () => {
    const r = await api()
      .post('/api/v1/auth/api-keys')
      .set('x-api-key', admin.key)
      .send({ name: 'Production API Key', scopes: ['workflows:read', 'workflows:write', 'workflows:execute'] })
      .expect(201);
    const { key, id, display } = r.body.data;
    issued.push(key);
    expect(key).toMatch(/^wfk_[0-9A-Za-z]{38}$/);
    expect(display).toBe(`${key.slice(0, 8)}…${key.slice(-4)}`);
    expect(r.headers['cache-control']).toBe('no-store');
    const got = await api().get(`/api/v1/auth/api-keys/${id}`).set('x-api-key', admin.key).expect(200);
    expect(got.body.data.key).toBeUndefined();
    expect(JSON.stringify(got.body)).not.toContain(key);
    expect(got.body.data).toMatchObject({ id, name: 'Production API Key', display, masked: false, created_by: null });
    const bad = await api().post('/api/v1/auth/api-keys').set('x-api-key', admin.key).send({ name: 'x', scopes: ['root'] }).expect(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    await api().post('/api/v1/auth/api-keys').set('x-api-key', admin.key).send({ name: 'x' }).expect(400);
    await api().post('/api/v1/auth/api-keys').set('x-api-key', admin.key).send({ name: 'x', preset: 'god_mode' }).expect(400);
    await api().post('/api/v1/auth/api-keys').set('x-api-key', admin.key).send({ name: 'x', preset: 'read_only', expires_at: '2001-01-01T00:00:00Z' }).expect(400);
  });

  it("members see their own keys, other members' fully masked, and cannot manage them", async () => {
    const list = await api().get('/api/v1/auth/api-keys').set(bearer(member1.key)).expect(200);
    const byId = new Map(list.body.data.map((k: { id: string }) => [k.id, k]));
    expect(byId.get(member1.id)).toMatchObject({ masked: false, display: expect.stringMatching(/^wfk_\w{4}…\w{4}$/) });
    expect(byId.get(member2.id)).toMatchObject({ masked: true, display: 'wfk_****…****' });
    expect(byId.get(admin.id)).toMatchObject({ masked: true });
    expect(JSON.stringify(list.body)).not.toContain(member2.key.slice(4, 8) + '…');

    const g = await api().get(`/api/v1/auth/api-keys/${member2.id}`).set(bearer(member1.key)).expect(200);
    expect(g.body.data.masked).toBe(true);
    for (const call of [
      api().patch(`/api/v1/auth/api-keys/${member2.id}`).send({ name: 'mine now' }),
      api().post(`/api/v1/auth/api-keys/${member2.id}/roll`).send({ grace_seconds: 0 }),
      api().delete(`/api/v1/auth/api-keys/${member2.id}`),
    ]) {
      const r = await call.set(bearer(member1.key)).expect(403);
      expect(r.body.error.code).toBe('FORBIDDEN');
    }
    await api().get('/api/v1/auth/whoami').set(bearer(member2.key)).expect(200);
    // An admin manages every key of the organization.
    const renamed = await api().patch(`/api/v1/auth/api-keys/${member2.id}`).set(bearer(admin.key)).send({ name: 'renamed by admin' }).expect(200);
    expect(renamed.body.data.name).toBe('renamed by admin');
  });

  it('PATCH narrows scopes and never widens them (a member trying to widen)', async () => {
    const created = await api().post('/api/v1/auth/api-keys').set(bearer(member1.key)).send({ name: 'reader', preset: 'read_only' }).expect(201);
    issued.push(created.body.data.key);
    const id = created.body.data.id;
    expect(created.body.data.created_by).toBe(member1.userId);
    const widen = await api()
      .patch(`/api/v1/auth/api-keys/${id}`)
      .set(bearer(member1.key))
      .send({ scopes: ['workflows:read', 'runs:read', 'connections:read', 'workflows:write'] })
      .expect(403);
    expect(widen.body.error).toMatchObject({ code: 'SCOPE_WIDENING_NOT_ALLOWED', details: { scopes: ['workflows:write'] } });
    await api().get('/api/v1/auth/whoami?scope=workflows:write').set(bearer(created.body.data.key)).expect(403);
    const narrow = await api().patch(`/api/v1/auth/api-keys/${id}`).set(bearer(member1.key)).send({ scopes: ['workflows:read'], name: 'wf reader' }).expect(200);
    expect(narrow.body.data).toMatchObject({ scopes: ['workflows:read'], name: 'wf reader' });
    // The narrowed key loses runs:read at once (cache invalidated).
    await api().get('/api/v1/auth/whoami?scope=runs:read').set(bearer(created.body.data.key)).expect(403);
    await api().patch(`/api/v1/auth/api-keys/${id}`).set(bearer(member1.key)).send({ scopes: ['workflows:read'], org_id: orgB }).expect(400);
  });

  it('DELETE is immediate and final', async () => {
    const k = await cliKey(orgA, { preset: 'read_only' });
    await api().get('/api/v1/auth/whoami').set(bearer(k.key)).expect(200);
    const del = await api().delete(`/api/v1/auth/api-keys/${k.id}`).set(bearer(admin.key)).expect(200);
    expect(del.body).toEqual({ success: true, data: { id: k.id, deleted: true } });
    const r = await api().get('/api/v1/auth/whoami').set(bearer(k.key)).expect(401);
    expect(r.body.error.code).toBe('INVALID_API_KEY');
    await api().get(`/api/v1/auth/api-keys/${k.id}`).set(bearer(admin.key)).expect(404);
    await api().delete(`/api/v1/auth/api-keys/${k.id}`).set(bearer(admin.key)).expect(404);
    await api().post(`/api/v1/auth/api-keys/${k.id}/roll`).set(bearer(admin.key)).send({}).expect(404);
  });

  it('shows last_used_at in listings after use', async () => {
    const created = await api().post('/api/v1/auth/api-keys').set(bearer(admin.key)).send({ name: 'usage', preset: 'read_only' }).expect(201);
    issued.push(created.body.data.key);
    expect(created.body.data.last_used_at).toBeNull();
    const before = Date.now();
    await api().get('/api/v1/auth/whoami').set(bearer(created.body.data.key)).expect(200);
    const list = await api().get('/api/v1/auth/api-keys').set(bearer(admin.key)).expect(200);
    const used = list.body.data.find((k: { id: string }) => k.id === created.body.data.id);
    expect(new Date(used.last_used_at).getTime()).toBeGreaterThanOrEqual(before - 1000);
    // And it reaches PostgreSQL in the batched flush.
    await (s.apiKeys as unknown as { lastUsed: { flush(): Promise<void> } }).lastUsed.flush();
    const [row] = await s.ds.query('SELECT last_used_at FROM api_keys WHERE id = $1', [created.body.data.id]);
    expect(row.last_used_at).not.toBeNull();
  });

  it('writes audit events for create, update, roll and revoke', async () => {
    const created = await api().post('/api/v1/auth/api-keys').set(bearer(admin.key)).send({ name: 'audited', preset: 'read_write' }).expect(201);
    issued.push(created.body.data.key);
    const id = created.body.data.id;
    await api().patch(`/api/v1/auth/api-keys/${id}`).set(bearer(admin.key)).send({ scopes: ['workflows:read'] }).expect(200);
    const rolled = await api().post(`/api/v1/auth/api-keys/${id}/roll`).set(bearer(admin.key)).send({ grace_seconds: 0 }).expect(200);
    issued.push(rolled.body.data.key);
    await api().delete(`/api/v1/auth/api-keys/${id}`).set(bearer(admin.key)).expect(200);
    const events = (await s.audit.list(orgA, { limit: 200 })).filter((e) => e.targetId === id);
    expect(events.map((e) => e.action).sort()).toEqual(['api_key.created', 'api_key.revoked', 'api_key.rolled', 'api_key.updated']);
    for (const e of events) expect(e).toMatchObject({ actorType: 'api_key', actorId: admin.id, ip: expect.any(String) });
    expect(events.find((e) => e.action === 'api_key.updated')!.details).toMatchObject({ scopes: { to: ['workflows:read'] } });
    expect(JSON.stringify(events)).not.toContain(rolled.body.data.key);
  });
});

describe('plan cap', () => {
  it('answers 403 KEY_LIMIT_REACHED naming the limit, and frees a slot on delete', async () => {
    const org = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Free org', plan: 'free' })).id;
    const limit = env.config.plans.free.maxApiKeys!;
    const first = await cliKey(org, { preset: 'full_access' });
    for (let i = 1; i < limit; i++) {
      const r = await api().post('/api/v1/auth/api-keys').set(bearer(first.key)).send({ name: `k${i}`, preset: 'read_only' }).expect(201);
      issued.push(r.body.data.key);
    }
    const over = await api().post('/api/v1/auth/api-keys').set(bearer(first.key)).send({ name: 'one too many', preset: 'read_only' }).expect(403);
    expect(over.body.error).toMatchObject({ code: 'KEY_LIMIT_REACHED', details: { limit, plan: 'free' } });
    expect(over.body.error.message).toContain(String(limit));
    const list = await api().get('/api/v1/auth/api-keys').set(bearer(first.key)).expect(200);
    await api().delete(`/api/v1/auth/api-keys/${list.body.data[0].id}`).set(bearer(first.key)).expect(200);
    const again = await api().post('/api/v1/auth/api-keys').set(bearer(first.key)).send({ name: 'fits again', preset: 'read_only' }).expect(201);
    issued.push(again.body.data.key);
  });
});
