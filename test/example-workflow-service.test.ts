import http from 'node:http';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { Webhook } from 'standardwebhooks';
import { createTestDatabase, startTestServer, type TestEnv } from './support/server.js';
import { freePort, projectRoot, StartedProcess } from './support/process.js';
import { authorize, basicAuth, createClient, createOrg, createUser, tokenRequest, type TestClient } from './support/oauth.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { JWT_BEARER } from '../src/oauth/grants/jwt-bearer.js';
import { API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE } from '../src/endpoints/token-exchange.js';
import { buildWorkflowService } from '../examples/workflow-service/app.js';

/**
 * Every credential kind against the example workflow service, which knows Flowgate only through the
 * SDK: allowed and refused by scope, workflow, organization, expiry and revocation.
 */
let env: TestEnv;
let svcUrl: string;
let svcServer: http.Server;
let orgA: string;
let orgB: string;
let wfA: string; // a workflow of org A
let wfA2: string;
let wfB: string; // a workflow of org B
let adminKeyA: string;

const key = (input: Record<string, unknown>, org = orgA) => env.server.services.apiKeys.create({ actor: CLI_ACTOR }, org, { name: 'e2e', ...input } as any);
const revokeKey = (id: string) => env.server.services.apiKeys.revoke({ actor: CLI_ACTOR }, id);

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const res = await fetch(new URL(path, svcUrl), {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function eventually(check: () => Promise<boolean>, ms = 1500): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

beforeAll(async () => {
  env = await startTestServer();
  // Enterprise: no key cap, this file creates many keys.
  orgA = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'Org A', plan: 'enterprise' })).id;
  orgB = await createOrg(env);
  const rs = await createClient(env, { orgId: null, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  // A short SDK cache keeps revocation tests quick; the default is 1 s.
  const { app } = buildWorkflowService({ issuer: env.url, clientId: rs.clientId, clientSecret: rs.clientSecret!, cacheTtlMs: 200 });
  svcServer = http.createServer(app.callback());
  await new Promise<void>((r) => svcServer.listen(0, '127.0.0.1', () => r()));
  svcUrl = `http://127.0.0.1:${(svcServer.address() as AddressInfo).port}`;
  adminKeyA = (await key({ preset: 'full_access' })).key;
  const adminKeyB = (await key({ preset: 'full_access' }, orgB)).key;
  wfA = (await call('POST', '/api/v1/workflows', { 'x-api-key': adminKeyA }, { name: 'Invoices' })).body.data.id;
  wfA2 = (await call('POST', '/api/v1/workflows', { 'x-api-key': adminKeyA }, { name: 'Payroll' })).body.data.id;
  wfB = (await call('POST', '/api/v1/workflows', { 'x-api-key': adminKeyB }, { name: 'Other org' })).body.data.id;
});
afterAll(async () => {
  svcServer?.close();
  await env?.close();
});

describe('API keys in each of their three places', () => {
  it('Bearer, x-api-key and the api-key query parameter all work', async () => {
    const { key: k } = await key({ preset: 'read_only' });
    expect((await call('GET', '/api/v1/workflows', bearer(k))).status).toBe(200);
    expect((await call('GET', '/api/v1/workflows', { 'x-api-key': k })).status).toBe(200);
    const q = await call('GET', `/api/v1/workflows?api-key=${k}`);
    expect(q.status).toBe(200);
    expect(q.body.data.map((w: { id: string }) => w.id).sort()).toEqual([wfA, wfA2].sort());
  });

  it('an organization that refuses keys in the query string is obeyed by workflow services too', async () => {
    const org = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'No query keys', plan: 'enterprise' })).id;
    const { key: k } = await key({ preset: 'read_only' }, org);
    expect((await call('GET', `/api/v1/workflows?api-key=${k}`)).status).toBe(200);
    await env.server.services.accounts.updateOrganization(CLI_ACTOR, org, { settings: { allowQueryApiKey: false } });
    expect(await eventually(async () => (await call('GET', `/api/v1/workflows?api-key=${k}`)).status === 401)).toBe(true);
    // The same key in a header still works.
    expect((await call('GET', '/api/v1/workflows', { 'x-api-key': k })).status).toBe(200);
  });

  it('no credential: 401 MISSING_API_KEY naming the header; a bad key: 401 INVALID_API_KEY', async () => {
    const none = await call('GET', '/api/v1/workflows');
    expect(none).toMatchObject({ status: 401, body: { success: false, error: { code: 'MISSING_API_KEY', details: { header: 'Authorization' } } } });
    const bad = await call('GET', '/api/v1/workflows', { 'x-api-key': 'sk-' + 'A'.repeat(38) });
    expect(bad).toMatchObject({ status: 401, body: { error: { code: 'INVALID_API_KEY' } } });
  });

  it('scope: a read-only key cannot write or run (403 INSUFFICIENT_PERMISSIONS naming the scope)', async () => {
    const { key: k } = await key({ preset: 'read_only' });
    const w = await call('POST', '/api/v1/workflows', { 'x-api-key': k }, { name: 'x' });
    expect(w).toMatchObject({ status: 403, body: { error: { code: 'INSUFFICIENT_PERMISSIONS', details: { required_scope: 'workflows:write' } } } });
    expect((await call('POST', `/api/v1/workflows/${wfA}/run`, { 'x-api-key': k }, {})).status).toBe(403);
  });

  it('workflow restriction: a key for one workflow triggers it and nothing else', async () => {
    const { key: k } = await key({ scopes: ['workflows:read', 'workflows:execute', 'runs:read'], workflow_id: wfA });
    const ok = await call('POST', `/developer/api/workflows/${wfA}/trigger/sync`, bearer(k), { human_msg: 'hello', file_urls: ['https://x.example/a.pdf'] });
    expect(ok.status).toBe(200);
    const status = await call('GET', `/developer/api/workflow_instances/${ok.body.data.workflow_instance_id}/status`, bearer(k));
    expect(status).toMatchObject({ status: 200, body: { data: { status: 'completed' } } });
    const other = await call('POST', `/developer/api/workflows/${wfA2}/trigger/sync`, bearer(k), { human_msg: 'x' });
    expect(other).toMatchObject({ status: 403, body: { error: { code: 'WORKFLOW_ACCESS_DENIED', message: 'API key is not authorized for this workflow' } } });
    expect((await call('GET', `/api/v1/workflows/${wfA2}`, bearer(k))).status).toBe(403);
    const list = await call('GET', '/api/v1/workflows', bearer(k));
    expect(list.body.data.map((w: { id: string }) => w.id)).toEqual([wfA]);
  });

  it('organization: a key of org A cannot reach org B\'s workflow', async () => {
    const { key: k } = await key({ preset: 'full_access' });
    const r = await call('GET', `/api/v1/workflows/${wfB}`, bearer(k));
    expect(r).toMatchObject({ status: 403, body: { error: { code: 'ORGANIZATION_ACCESS_DENIED' } } });
    expect((await call('POST', `/developer/api/workflows/${wfB}/trigger/sync`, bearer(k), {})).status).toBe(403);
  });

  it('expiry and revocation: refused once expired, and within a second of revocation', async () => {
    const soon = await key({ preset: 'read_only', expires_at: new Date(Date.now() + 1500).toISOString() });
    expect((await call('GET', '/api/v1/workflows', bearer(soon.key))).status).toBe(200);
    expect(await eventually(async () => (await call('GET', '/api/v1/workflows', bearer(soon.key))).status === 401, 3000)).toBe(true);
    const { key: k, apiKey } = await key({ preset: 'read_only' });
    expect((await call('GET', '/api/v1/workflows', bearer(k))).status).toBe(200);
    await revokeKey(apiKey.id);
    expect(await eventually(async () => (await call('GET', '/api/v1/workflows', bearer(k))).status === 401, 1000)).toBe(true);
  });
});

describe('OAuth access tokens', () => {
  let app: TestClient;
  beforeAll(async () => {
    app = await createClient(env, {
      orgId: orgA,
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      scope: 'openid offline_access workflows:read runs:read connections:read',
    });
  });

  it('authorization-code token (JWT for the workflow API, acting for the org the user chose)', async () => {
    const user = await createUser(env, { orgIds: [orgA] });
    const r = await authorize(env, { client: app, user, scope: 'openid workflows:read', resource: env.config.apiAudience });
    const at = r.tokens!.access_token;
    expect(at.split('.')).toHaveLength(3);
    expect((await call('GET', '/api/v1/workflows', bearer(at))).status).toBe(200);
    expect((await call('GET', `/api/v1/workflows/${wfB}`, bearer(at))).status).toBe(403);
    expect((await call('GET', '/api/v1/runs', bearer(at))).status).toBe(403); // runs:read not granted
    const rev = await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: at }).toString(),
    });
    expect(rev.status).toBe(200);
    expect(await eventually(async () => (await call('GET', '/api/v1/workflows', bearer(at))).status === 401)).toBe(true);
  });

  it('revoking the authorized app (consent) ends its JWT access tokens at the workflow service too', async () => {
    const user = await createUser(env, { orgIds: [orgA] });
    const r = await authorize(env, { client: app, user, scope: 'openid workflows:read', resource: env.config.apiAudience });
    const at = r.tokens!.access_token;
    expect(at.split('.')).toHaveLength(3);
    expect((await call('GET', '/api/v1/workflows', bearer(at))).status).toBe(200);
    const [grant] = await env.server.services.consents.listForUser(user.id);
    await env.server.services.consents.revoke(CLI_ACTOR, user.id, grant.grantId);
    expect(await eventually(async () => (await call('GET', '/api/v1/workflows', bearer(at))).status === 401)).toBe(true);
  });

  it('client-credentials token (opaque): allowed by scope, refused after revocation', async () => {
    const t = await tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read' }, { authorization: basicAuth(app.clientId, app.clientSecret!) });
    expect((await call('GET', '/api/v1/workflows', bearer(t.body.access_token))).status).toBe(200);
    expect((await call('GET', '/api/v1/connections', bearer(t.body.access_token))).status).toBe(403);
    await fetch(new URL('/token/revocation', env.url), {
      method: 'POST',
      headers: { authorization: basicAuth(app.clientId, app.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.body.access_token }).toString(),
    });
    expect(await eventually(async () => (await call('GET', '/api/v1/workflows', bearer(t.body.access_token))).status === 401)).toBe(true);
  });

  it('an expired token is refused', async () => {
    const t = await tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read' }, { authorization: basicAuth(app.clientId, app.clientSecret!) });
    // Expire it in the store, as time would.
    const kv = env.server.services.kv;
    const k = `oidc:ClientCredentials:${t.body.access_token}`;
    const payload = JSON.parse((await kv.get(k))!);
    payload.exp = Math.floor(Date.now() / 1000) - 1;
    await kv.set(k, JSON.stringify(payload), 60);
    await kv.publish('credentials:revoked', 'test');
    expect(await eventually(async () => (await call('GET', '/api/v1/workflows', bearer(t.body.access_token))).status === 401)).toBe(true);
  });
});

describe('server-to-server', () => {
  let svc: TestClient;
  const sign = (claims: Record<string, unknown>, aud: string, exp: string | number = '5m') =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: svc.publicJwk!.kid })
      .setIssuer(svc.clientId)
      .setSubject(svc.clientId)
      .setAudience(aud)
      .setIssuedAt()
      .setJti(randomBytes(8).toString('hex'))
      .setExpirationTime(exp)
      .sign(svc.privateKey!);
  beforeAll(async () => {
    svc = await createClient(env, {
      orgId: orgA,
      grantTypes: ['client_credentials', JWT_BEARER],
      redirectUris: [],
      authMethod: 'private_key_jwt',
      scope: 'workflows:read workflows:execute',
    });
  });

  it('service JWT sent straight to the workflow service', async () => {
    const jwt = await sign({ scope: 'workflows:read workflows:execute' }, env.config.apiAudience);
    expect((await call('GET', '/api/v1/workflows', bearer(jwt))).status).toBe(200);
    expect((await call('POST', `/api/v1/workflows/${wfA}/run`, bearer(jwt), {})).status).toBe(201);
    expect((await call('GET', '/api/v1/runs', bearer(jwt))).status).toBe(403);
    expect((await call('GET', `/api/v1/workflows/${wfB}`, bearer(jwt))).status).toBe(403);
    const wrongAud = await sign({ scope: 'workflows:read' }, 'https://not-the-api.example');
    expect((await call('GET', '/api/v1/workflows', bearer(wrongAud))).status).toBe(401);
    const expired = await sign({ scope: 'workflows:read' }, env.config.apiAudience, Math.floor(Date.now() / 1000) - 10);
    expect((await call('GET', '/api/v1/workflows', bearer(expired))).status).toBe(401);
  });

  it('JWT-bearer token', async () => {
    const t = await tokenRequest(env, { grant_type: JWT_BEARER, assertion: await sign({}, env.url), scope: 'workflows:read' });
    expect(t.status).toBe(200);
    expect((await call('GET', '/api/v1/workflows', bearer(t.body.access_token))).status).toBe(200);
    expect((await call('POST', `/api/v1/workflows/${wfA}/run`, bearer(t.body.access_token), {})).status).toBe(403);
  });

  it('exchanged token: verified locally by the SDK, narrower than the key', async () => {
    const { key: k } = await key({ scopes: ['workflows:read', 'workflows:execute'], workflow_id: wfA });
    const t = await tokenRequest(env, { grant_type: TOKEN_EXCHANGE, subject_token: k, subject_token_type: API_KEY_TOKEN_TYPE, scope: 'workflows:read' });
    expect(t.status).toBe(200);
    const at = t.body.access_token;
    expect((await call('GET', `/api/v1/workflows/${wfA}`, bearer(at))).status).toBe(200);
    expect((await call('GET', `/api/v1/workflows/${wfA2}`, bearer(at))).status).toBe(403);
    expect((await call('POST', `/api/v1/workflows/${wfA}/run`, bearer(at), {})).status).toBe(403);
    expect((await call('GET', `/api/v1/workflows/${wfB}`, bearer(at))).status).toBe(403);
    const tampered = at.slice(0, -4) + (at.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await call('GET', `/api/v1/workflows/${wfA}`, bearer(tampered))).status).toBe(401);
  });
});

describe('inbound webhooks (the webhook category)', () => {
  it('a signed webhook triggers the workflow; a forged or replayed one is refused', async () => {
    const created = await call('POST', '/api/v1/workflows', { 'x-api-key': adminKeyA }, { name: 'Hooked' });
    const { id, webhook_secret } = created.body.data;
    expect(webhook_secret).toMatch(/^whsec_/);
    expect((await call('GET', `/api/v1/workflows/${id}`, { 'x-api-key': adminKeyA })).body.data.webhook_secret).toBeUndefined();
    const body = JSON.stringify({ type: 'invoice.paid', timestamp: new Date().toISOString(), data: { invoice: 42 } });
    const msgId = `msg_${randomBytes(6).toString('hex')}`;
    const headers = (wh: Webhook) => {
      const ts = new Date();
      return { 'webhook-id': msgId, 'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)), 'webhook-signature': wh.sign(msgId, ts, body), 'content-type': 'application/json' };
    };
    const post = (h: Record<string, string>) => fetch(new URL(`/api/v1/hooks/${id}`, svcUrl), { method: 'POST', headers: h, body });
    const ok = await post(headers(new Webhook(webhook_secret)));
    expect(ok.status).toBe(202);
    expect(ok.headers.get('x-ratelimit-limit')).toBeTruthy();
    expect((await post(headers(new Webhook(webhook_secret)))).status).toBe(409); // replayed webhook-id
    const forged = await post({ ...headers(new Webhook(`whsec_${randomBytes(24).toString('base64')}`)), 'webhook-id': `msg_${randomBytes(6).toString('hex')}` });
    expect(forged.status).toBe(401);
  });

  it('is limited per client IP through Flowgate, shared by every replica of the service', async () => {
    const rs = await createClient(env, { orgId: orgA, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    const check = (key: string) =>
      fetch(new URL('/ratelimit/check', env.url), {
        method: 'POST',
        headers: { authorization: basicAuth(rs.clientId, rs.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ category: 'webhook', key }).toString(),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    const first = await check('203.0.113.7');
    expect(first.status).toBe(200);
    // Org A is on the enterprise plan: its webhook limit, from config/default.json.
    expect(first.body.ratelimit).toMatchObject({ policy: 'webhook', limit: (env.config.plans.enterprise as any).rateLimits.webhook.limit, window: 60 });
    const second = await check('203.0.113.7');
    expect(second.body.ratelimit.remaining).toBe(first.body.ratelimit.remaining - 1);
    expect((await check('198.51.100.1')).body.ratelimit.remaining).toBe(first.body.ratelimit.remaining);
    const anon = await fetch(new URL('/ratelimit/check', env.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'category=webhook&key=x' });
    expect(anon.status).toBe(401);
  });
});

describe('npm run example with no Flowgate to attach to', () => {
  it('starts a Flowgate of its own (own port and data), prints an API key that works, and stops on SIGTERM through npm', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-example-'));
    // Its own data: a database of its own (PostgreSQL here, only to start faster than the embedded one).
    const db = await createTestDatabase();
    const [examplePort, flowgatePort, nobody] = [await freePort(), await freePort(), await freePort()];
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'CLIENT_ID', 'CLIENT_SECRET', 'RS_CLIENT_ID', 'RS_CLIENT_SECRET', 'PORT', 'ISSUER', 'NODE_ENV']) delete base[name];
    const child = spawn('npm', ['run', '--silent', 'example'], {
      cwd: projectRoot,
      env: {
        ...base,
        FLOWGATE_URL: `http://127.0.0.1:${nobody}`,
        FLOWGATE_PORT: String(flowgatePort),
        EXAMPLE_PORT: String(examplePort),
        DATABASE_URL: db.url,
        DATA_DIR: dir,
        KEYS_DIR: path.join(dir, 'keys'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new StartedProcess(child);
    try {
      const [, apiKey] = await p.waitFor(/export API_KEY=(\S+)/, 90_000);
      expect(p.stdout).toContain(`started here: nothing answered at http://127.0.0.1:${nobody}`);
      expect(p.stdout).toContain(`Workflow service:  http://localhost:${examplePort}`);
      const created = await fetch(`http://127.0.0.1:${examplePort}/api/v1/workflows`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Invoices' }),
      });
      expect(created.status).toBe(201);
      const stopped = await p.stop('SIGTERM');
      expect(stopped.code).toBe(0);
    } finally {
      await p.stop('SIGKILL');
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
