import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { runCliJson } from './support/cli.js';
import { CLI_ACTOR } from '../src/audit/service.js';

let env: TestEnv;
let orgId: string;
const issued: string[] = [];

const cli = (...args: string[]) => runCliJson(env, ...args);

beforeAll(async () => {
  env = await startTestServer();
  orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'CLI org', plan: 'pro' })).id;
});

afterAll(async () => {
  if (env) {
    for (const k of issued) expect(env.logs.text).not.toContain(k);
    await env.close();
  }
});

describe('api-keys CLI', () => {
  it('create (preset, workflow, expiry), list, roll and revoke, each printing one JSON object', async () => {
    const expires = new Date(Date.now() + 86400_000).toISOString();
    const created = await cli('api-keys', 'create', '--org', orgId, '--name', 'ci', '--preset', 'read_write', '--workflow', 'wf_cli', '--expires-at', expires);
    expect(created.code).toBe(0);
    expect(created.out).toMatchObject({ id: expect.any(String), key: expect.stringMatching(/^sk-[0-9A-Za-z]{38}$/), workflow_id: 'wf_cli', expires_at: expires });
    issued.push(created.out.key);
    const me = await request(env.url).get('/api/v1/auth/whoami?workflow_id=wf_cli&scope=workflows:execute').set('x-api-key', created.out.key).expect(200);
    expect(me.body.data.key_id).toBe(created.out.id);

    const scoped = await cli('api-keys', 'create', '--org', orgId, '--name', 'scoped', '--scopes', 'workflows:read,runs:read');
    expect(scoped.out.scopes).toEqual(['workflows:read', 'runs:read']);
    issued.push(scoped.out.key);

    const list = await cli('api-keys', 'list', '--org', orgId);
    expect(list.out.items.map((k: { id: string }) => k.id).sort()).toEqual([created.out.id, scoped.out.id].sort());
    expect(JSON.stringify(list.out)).not.toContain(created.out.key);

    const rolled = await cli('api-keys', 'roll', '--id', created.out.id, '--grace-seconds', '0');
    expect(rolled.out).toMatchObject({ id: created.out.id, key: expect.stringMatching(/^sk-/) });
    issued.push(rolled.out.key);
    await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', created.out.key).expect(401);
    await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', rolled.out.key).expect(200);

    const revoked = await cli('api-keys', 'revoke', '--id', created.out.id);
    expect(revoked.out).toEqual({ id: created.out.id, revoked: true });
    await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', rolled.out.key).expect(401);
  });

  it('refuses bad usage with a clear error', async () => {
    const both = await cli('api-keys', 'create', '--org', orgId, '--name', 'x', '--preset', 'read_only', '--scopes', 'runs:read');
    expect(both.code).toBe(2);
    expect(both.out.error.code).toBe('USAGE');
    const unknown = await cli('api-keys', 'create', '--org', orgId, '--name', 'x', '--scopes', 'root');
    expect(unknown.code).toBe(1);
    expect(unknown.out.error.code).toBe('VALIDATION_ERROR');
    const missing = await cli('api-keys', 'revoke', '--id', '00000000-0000-4000-8000-000000000000');
    expect(missing.out.error.code).toBe('NOT_FOUND');
  });
});

describe('OAuth access tokens on the management API', () => {
  it('a client-credentials token with api_keys:* manages keys of its own organization only', async () => {
    const s = env.server.services;
    const { client, clientSecret } = await s.clients.create(CLI_ACTOR, {
      orgId,
      name: 'automation',
      grantTypes: ['client_credentials'],
      scope: 'api_keys:read api_keys:write workflows:read',
    });
    const tokenFor = async (extra: Record<string, string>) => {
      const r = await request(env.url)
        .post('/token')
        .auth(client.client_id, clientSecret!)
        .type('form')
        .send({ grant_type: 'client_credentials', ...extra });
      return r;
    };
    const results: Record<string, number> = {};
    for (const [label, extra] of [
      ['opaque', { scope: 'api_keys:read api_keys:write workflows:read' }],
      ['jwt', { scope: 'api_keys:read api_keys:write workflows:read', resource: env.config.apiAudience }],
    ] as const) {
      const t = await tokenFor(extra);
      if (t.status !== 200) {
        results[label] = t.status;
        continue;
      }
      const token = t.body.access_token as string;
      const me = await request(env.url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${token}`);
      results[label] = me.status;
      if (me.status !== 200) continue;
      expect(me.body.data).toMatchObject({ kind: 'access_token', org_id: orgId, client_id: client.client_id, role: 'admin' });
      const created = await request(env.url).post('/api/v1/auth/api-keys').set('Authorization', `Bearer ${token}`).send({ name: `via ${label}`, scopes: ['workflows:read'] }).expect(201);
      issued.push(created.body.data.key);
      // Cannot mint wider than the token holds.
      await request(env.url).post('/api/v1/auth/api-keys').set('Authorization', `Bearer ${token}`).send({ name: 'wide', preset: 'read_write' }).expect(403);
    }
    // Both forms are accepted end to end: opaque (provider models) and RFC 9068 JWT (own keys).
    expect(results).toEqual({ opaque: 200, jwt: 200 });
    const bad = await request(env.url).get('/api/v1/auth/whoami').set('Authorization', 'Bearer not-a-real-token-value').expect(401);
    expect(bad.body.error.code).toBe('INVALID_TOKEN');
  });
});
