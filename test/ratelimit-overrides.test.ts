import { request } from './support/api.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, createClient } from './support/oauth.js';
import { runCliJson } from './support/cli.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { API_KEY_SCOPES } from '../src/apikeys/presets.js';

let env: TestEnv;
let orgA: string;
let orgB: string;
let adminKey: string; // made by the CLI: acts as an admin of org A
let rsAuth: string;

async function api(method: string, path: string, key: string, body?: unknown) {
  const r = request(env.url);
  const t = method === 'PUT' ? r.put(path) : method === 'POST' ? r.post(path) : r.get(path);
  const res = await t.set('x-api-key', key).send(body as object);
  return { status: res.status, body: res.body as any };
}

async function limitFor(key: string, category: string) {
  const res = await fetch(new URL('/token/introspection', env.url), {
    method: 'POST',
    headers: { authorization: rsAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: key, ratelimit_category: category }).toString(),
  });
  return ((await res.json()) as any).ratelimit;
}

beforeAll(async () => {
  env = await startTestServer();
  const s = env.server.services;
  orgA = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'A', plan: 'pro' })).id;
  orgB = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'B' })).id;
  adminKey = (await s.apiKeys.create({ actor: CLI_ACTOR }, orgA, { name: 'admin', preset: 'full_access' } as any)).key;
  const rs = await createClient(env, { orgId: orgA, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  rsAuth = basicAuth(rs.clientId, rs.clientSecret!);
});
afterAll(async () => env?.close());

describe('rate-limit overrides (plan → organization → key)', () => {
  it('an admin sets the organization\'s limits through the API; introspection applies them, and the audit log records it', async () => {
    const before = await api('GET', '/api/v1/rate-limits', adminKey);
    expect(before.status).toBe(200);
    expect(before.body.data).toMatchObject({ plan: 'pro', organization_overrides: null });
    expect((await limitFor(adminKey, 'write')).limit).toBe(before.body.data.plan_limits.write.limit);
    const put = await api('PUT', '/api/v1/rate-limits', adminKey, { limits: { write: { limit: 7, window: '1m' } } });
    expect(put.status).toBe(200);
    expect(put.body.data.organization_overrides).toEqual({ write: { limit: 7, window: '1m' } });
    expect(await limitFor(adminKey, 'write')).toMatchObject({ limit: 7, window: 60 });
    const [event] = await env.server.services.ds.query(`SELECT * FROM audit_events WHERE action = 'organization.rate_limits_updated' AND org_id = $1`, [orgA]);
    expect(event.details.rate_limits).toEqual({ write: { limit: 7, window: '1m' } });
  });

  it('a single key overrides its organization (CLI), and clearing falls back', async () => {
    const { key, apiKey } = await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgA, { name: 'k', preset: 'read_only' } as any);
    const set = await runCliJson(env, 'rate-limits', 'set', '--org', orgA, '--key', apiKey.id, '--limits', '{"read":{"limit":3,"window":"1h"}}');
    expect(set.code).toBe(0);
    expect(await limitFor(key, 'read')).toMatchObject({ limit: 3, window: 3600 });
    expect((await runCliJson(env, 'rate-limits', 'set', '--org', orgA, '--key', apiKey.id, '--clear')).code).toBe(0);
    expect((await limitFor(key, 'read')).limit).not.toBe(3);
  });

  it('refuses invalid limits with a clear error, members, and keys of another organization', async () => {
    const zero = await api('PUT', '/api/v1/rate-limits', adminKey, { limits: { write: { limit: 5, window: 0 } } });
    expect(zero.status).toBe(400);
    expect(zero.body.error.code).toBe('VALIDATION_ERROR');
    expect(zero.body.error.message).toMatch(/window/);
    const negative = await api('PUT', '/api/v1/rate-limits', adminKey, { limits: { read: { limit: -1, window: '1m' } } });
    expect(negative.status).toBe(400);

    const { user, membership } = await env.server.services.accounts.createUser(CLI_ACTOR, { email: 'member-rl@example.test', password: 'a long password', orgId: orgA, role: 'member' });
    const memberKey = (
      await env.server.services.apiKeys.create(
        { actor: { type: 'user', id: user.id }, principal: { kind: 'session', orgId: orgA, userId: user.id, role: membership.role, scopes: API_KEY_SCOPES } },
        orgA,
        { name: 'member', preset: 'full_access' } as any,
      )
    ).key;
    const denied = await api('PUT', '/api/v1/rate-limits', memberKey, { limits: { write: { limit: 100000, window: '1m' } } });
    expect(denied.status).toBe(403);

    const foreign = await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgB, { name: 'b', preset: 'read_only' } as any);
    const cross = await api('PUT', `/api/v1/rate-limits/api-keys/${foreign.apiKey.id}`, adminKey, { limits: { read: { limit: 1, window: '1m' } } });
    expect(cross.status).toBe(404);
    const [row] = await env.server.services.ds.query(`SELECT rate_limit FROM api_keys WHERE id = $1`, [foreign.apiKey.id]);
    expect(row.rate_limit).toBeNull();
  });
});
