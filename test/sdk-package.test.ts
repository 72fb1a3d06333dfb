import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import { JWT_BEARER } from '../src/oauth/grants/jwt-bearer.js';
import { API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE } from '../src/endpoints/token-exchange.js';
import { basicAuth, createClient, createOrg, tokenRequest, type TestClient } from './support/oauth.js';
import { freePort, projectRoot, StartedProcess } from './support/process.js';
import { startTestServer, type TestEnv } from './support/server.js';

/**
 * @flowgate/sdk as its users get it: `npm pack`, installed from the tarball into a fresh project
 * outside the repository, and run by plain Node 24 (no tsx, no TypeScript) as an Express service and
 * a Fetch-API service against a live Flowgate, with every credential kind.
 */
const NODE = path.join(projectRoot, 'node_modules/node/bin/node');
const TSC = path.join(projectRoot, 'node_modules/.bin/tsc');

let env: TestEnv;
let dir: string;
let orgId: string;
let otherOrg: string;
let rs: TestClient;
const services: StartedProcess[] = [];
const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;

function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

const EXPRESS_SERVICE = `
import express from 'express';
import { flowgateAuth, requireScope, requireWorkflowAccess, checkOrganization, errorHandler, webhookReceiver } from '@flowgate/sdk/express';

const e = process.env;
const app = express();
app.post('/hooks', webhookReceiver({ secret: e.WEBHOOK_SECRET }), (req, res) => res.status(202).json({ type: req.webhook.type }));
app.use(flowgateAuth({ issuer: e.ISSUER, clientId: e.CLIENT_ID, clientSecret: e.CLIENT_SECRET, rateLimit: e.RATE_LIMIT === '1', cacheTtlMs: 0 }));
app.get('/whoami', requireScope('workflows:read'), (req, res) => res.json(req.flowgate));
app.post('/workflows/:id/run', requireScope('workflows:execute'), requireWorkflowAccess((req) => req.params.id), (req, res) => {
  checkOrganization(req, e.ORG_ID);
  res.status(201).json({ ran: req.params.id });
});
app.use(errorHandler());
const server = app.listen(Number(e.PORT), '127.0.0.1', () => console.log('listening ' + server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

const FETCH_SERVICE = `
import http from 'node:http';
import { flowgateFetch, webhookHandler, checkOrganization } from '@flowgate/sdk/fetch';

const e = process.env;
const flowgate = flowgateFetch({ issuer: e.ISSUER, clientId: e.CLIENT_ID, clientSecret: e.CLIENT_SECRET, rateLimit: e.RATE_LIMIT === '1', cacheTtlMs: 0 });
const whoami = flowgate.protect({ scopes: ['workflows:read'] }, (request, identity) => Response.json(identity));
const run = flowgate.protect(
  { scopes: ['workflows:execute'], workflowId: (request, id) => id, route: '/workflows/:id/run' },
  (request, identity, id) => {
    checkOrganization(identity, e.ORG_ID);
    return Response.json({ ran: id }, { status: 201 });
  },
);
const hooks = webhookHandler({ secret: e.WEBHOOK_SECRET }, (event) => Response.json({ type: event.type }, { status: 202 }));

/** A Fetch-API handler, as Hono, Next.js route handlers, Bun.serve and Deno.serve take it. */
async function handle(request) {
  const { pathname } = new URL(request.url);
  const m = /^\\/workflows\\/([^/]+)\\/run$/.exec(pathname);
  if (request.method === 'GET' && pathname === '/whoami') return whoami(request);
  if (request.method === 'POST' && m) return run(request, m[1]);
  if (request.method === 'POST' && pathname === '/hooks') return hooks(request);
  return new Response('not found', { status: 404 });
}

// Plain Node has no Fetch-API server: a few lines of bridge stand in for Bun or Deno.
const server = http.createServer(async (req, res) => {
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : req;
  const request = new Request('http://' + req.headers.host + req.url, { method: req.method, headers: req.headers, body, duplex: 'half' });
  const response = await handle(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});
server.listen(Number(e.PORT), '127.0.0.1', () => console.log('listening ' + server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

/** Type declarations as a TypeScript user sees them, from the installed package. */
const CONSUMER_TS = `
import { Flowgate, FlowgateError, flowgateErrors, parseCredential, verifyWebhook, type FlowgateIdentity } from '@flowgate/sdk';
import { flowgateAuth, errorHandler, type FlowgateRequest } from '@flowgate/sdk/express';
import { flowgateFetch, errorResponse } from '@flowgate/sdk/fetch';
import { parseCredential as parse2 } from '@flowgate/sdk/credentials';

const core = new Flowgate({ issuer: 'https://auth.example.com', clientId: 'a', clientSecret: 'b' });
const fetchAdapter = flowgateFetch({ issuer: 'https://auth.example.com', clientId: 'a', clientSecret: 'b' });
const handler: (request: Request) => Promise<Response> = fetchAdapter.protect({ scopes: ['workflows:read'] }, (_r, id: FlowgateIdentity) => Response.json(id.scopes));
const err: FlowgateError = flowgateErrors.missing();
const res: Response = errorResponse(err);
const mw = flowgateAuth({ issuer: 'x', clientId: 'a', clientSecret: 'b', rateLimit: { ip: (req: FlowgateRequest) => req.ip } });
const eh = errorHandler();
const p = parseCredential({ headers: {} }) ?? parse2({ headers: {} });
void [core, handler, res, mw, eh, p, verifyWebhook];
// @ts-expect-error the options are checked
flowgateFetch({ issuer: 1 });
`;

async function startService(file: string, extra: Record<string, string> = {}): Promise<string> {
  const port = await freePort();
  const child = spawn(NODE, [file], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      ISSUER: env.url,
      CLIENT_ID: rs.clientId,
      CLIENT_SECRET: rs.clientSecret!,
      ORG_ID: orgId,
      WEBHOOK_SECRET: webhookSecret,
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new StartedProcess(child);
  services.push(p);
  await p.waitFor(/listening \d+/, 30_000);
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-sdk-consumer-'));
  const packs = path.join(dir, 'packs');
  mkdirSync(packs);
  const [, started] = await Promise.all([
    (async () => {
      await run('npm', ['pack', '--silent', '--pack-destination', packs], path.join(projectRoot, 'packages/sdk'));
      const tarball = path.join(packs, readdirSync(packs).find((f) => f.endsWith('.tgz'))!);
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      // From the npm cache that the repository's own install filled: no network needed.
      await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball, 'express@5'], dir);
    })(),
    startTestServer(),
  ]);
  env = started;
  orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'SDK consumer', plan: 'enterprise' })).id;
  otherOrg = await createOrg(env);
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true, scope: 'workflows:read' });
  writeFileSync(path.join(dir, 'express-service.mjs'), EXPRESS_SERVICE);
  writeFileSync(path.join(dir, 'fetch-service.mjs'), FETCH_SERVICE);
}, 180_000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await env?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds compiled JavaScript and declarations only, and its types check in a consumer project', async () => {
    const listing = await run('tar', ['-tzf', path.join(dir, 'packs', readdirSync(path.join(dir, 'packs'))[0])], dir);
    const files = listing.split('\n').filter(Boolean);
    expect(files).toEqual(expect.arrayContaining(['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/express.js', 'package/dist/fetch.d.ts', 'package/README.md']));
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    writeFileSync(path.join(dir, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, typeRoots: [path.join(projectRoot, 'node_modules/@types')], types: ['node'] },
        files: ['consumer.ts'],
      }),
    );
    await run(TSC, ['-p', 'tsconfig.json'], dir);
  }, 120_000);

  it('imports nothing from the server', async () => {
    const out = await run('grep', ['-rlE', "from '\\.\\./\\.\\./|/src/", path.join(dir, 'node_modules/@flowgate/sdk/dist')], dir).catch(() => '');
    expect(out).toBe('');
  });
});

interface Credentials {
  apiKey: string;
  restrictedKey: string;
  opaque: string;
  jwtAccess: string;
  exchanged: string;
  serviceJwt: string;
  otherOrgKey: string;
}
let creds: Credentials;

async function credentials(): Promise<Credentials> {
  const key = async (org: string, input: Record<string, unknown>) =>
    (await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, org, { name: 'sdk', ...input } as never)).key;
  const apiKey = await key(orgId, { scopes: ['workflows:read', 'workflows:execute'] });
  const restrictedKey = await key(orgId, { scopes: ['workflows:read', 'workflows:execute'], workflow_id: 'wf_allowed' });
  const otherOrgKey = await key(otherOrg, { scopes: ['workflows:read', 'workflows:execute'] });
  const app = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read workflows:execute' });
  const cc = (extra: Record<string, string>) =>
    tokenRequest(env, { grant_type: 'client_credentials', scope: 'workflows:read workflows:execute', ...extra }, { authorization: basicAuth(app.clientId, app.clientSecret!) });
  const opaque = (await cc({})).body.access_token;
  const jwtAccess = (await cc({ resource: env.config.apiAudience })).body.access_token;
  const exchanged = (await tokenRequest(env, { grant_type: TOKEN_EXCHANGE, subject_token: apiKey, subject_token_type: API_KEY_TOKEN_TYPE })).body.access_token;
  const svc = await createClient(env, { orgId, grantTypes: ['client_credentials', JWT_BEARER], redirectUris: [], authMethod: 'private_key_jwt', scope: 'workflows:read workflows:execute' });
  const serviceJwt = await new SignJWT({ scope: 'workflows:read workflows:execute' })
    .setProtectedHeader({ alg: 'ES256', kid: svc.publicJwk!.kid })
    .setIssuer(svc.clientId)
    .setSubject(svc.clientId)
    .setAudience(env.config.apiAudience)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(svc.privateKey!);
  return { apiKey, restrictedKey, opaque, jwtAccess, exchanged, serviceJwt, otherOrgKey };
}

async function call(base: string, method: string, p: string, headers: Record<string, string> = {}) {
  const res = await fetch(base + p, { method, headers });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe.each([
  ['Express', 'express-service.mjs'],
  ['Fetch API', 'fetch-service.mjs'],
])('%s service on plain Node 24', (_name, file) => {
  let base: string;
  beforeAll(async () => {
    creds ??= await credentials();
    base = await startService(file);
  }, 60_000);

  it('every credential kind is accepted, and says what it is', async () => {
    const kinds: [string, Record<string, string>, string, string][] = [
      ['API key (Bearer)', bearer(creds.apiKey), 'api_key', 'introspection'],
      ['API key (x-api-key)', { 'x-api-key': creds.apiKey }, 'api_key', 'introspection'],
      ['opaque access token', bearer(creds.opaque), 'access_token', 'introspection'],
      ['JWT access token', bearer(creds.jwtAccess), 'access_token', 'introspection'],
      ['exchanged token', bearer(creds.exchanged), 'access_token', 'local_jwt'],
      ['service JWT', bearer(creds.serviceJwt), 'service_jwt', 'introspection'],
    ];
    for (const [what, headers, credentialType, verifiedBy] of kinds) {
      const r = await call(base, 'GET', '/whoami', headers);
      expect(r.status, what).toBe(200);
      expect(r.body, what).toMatchObject({ credentialType, verifiedBy, orgId });
      const run = await call(base, 'POST', '/workflows/wf_1/run', headers);
      expect(run, what).toMatchObject({ status: 201, body: { ran: 'wf_1' } });
    }
    expect((await call(base, 'GET', `/whoami?api-key=${creds.apiKey}`)).status).toBe(200);
  });

  it('refusals in Flowgate\'s error shape: scope, workflow, organization, missing, invalid, malformed, multiple', async () => {
    expect(await call(base, 'POST', '/workflows/wf_other/run', bearer(creds.restrictedKey))).toMatchObject({
      status: 403,
      body: { success: false, error: { code: 'WORKFLOW_ACCESS_DENIED', message: 'API key is not authorized for this workflow' } },
    });
    expect((await call(base, 'POST', '/workflows/wf_allowed/run', bearer(creds.restrictedKey))).status).toBe(201);
    // A resource server of one organization learns nothing of another organization's keys.
    expect(await call(base, 'POST', '/workflows/wf_1/run', bearer(creds.otherOrgKey))).toMatchObject({ status: 401, body: { error: { code: 'INVALID_API_KEY' } } });
    // A resource of another organization: the handler's checkOrganization refuses.
    const foreign = await startService(file, { ORG_ID: otherOrg });
    expect(await call(foreign, 'POST', '/workflows/wf_1/run', bearer(creds.apiKey))).toMatchObject({
      status: 403,
      body: { error: { code: 'ORGANIZATION_ACCESS_DENIED', message: 'API key is not authorized for this organization' } },
    });
    const none = await call(base, 'GET', '/whoami');
    expect(none).toMatchObject({ status: 401, body: { error: { code: 'MISSING_API_KEY', details: { header: 'Authorization' } } } });
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await call(base, 'GET', '/whoami', bearer('sk-' + 'A'.repeat(38)))).toMatchObject({ status: 401, body: { error: { code: 'INVALID_API_KEY' } } });
    expect(await call(base, 'GET', '/whoami', bearer('not-a-token'))).toMatchObject({ status: 401, body: { error: { code: 'INVALID_TOKEN' } } });
    expect(await call(base, 'GET', '/whoami', { authorization: 'Bearer a b' })).toMatchObject({ status: 400, body: { error: { code: 'MALFORMED_AUTHORIZATION' } } });
    expect(await call(base, 'GET', '/whoami', { ...bearer(creds.apiKey), 'x-api-key': creds.opaque })).toMatchObject({ status: 400, body: { error: { code: 'MULTIPLE_CREDENTIALS' } } });
  });

  it('an expired key says EXPIRED_API_KEY with expired_at; a query key refused by its organization QUERY_API_KEY_DISABLED', async () => {
    const expiresAt = new Date(Date.now() + 1200);
    const soon = (await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'soon', scopes: ['workflows:read'], expires_at: expiresAt.toISOString() } as never)).key;
    expect((await call(base, 'GET', '/whoami', bearer(soon))).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    const expired = await call(base, 'GET', '/whoami', bearer(soon));
    expect(expired).toMatchObject({ status: 401, body: { error: { code: 'EXPIRED_API_KEY', details: { expired_at: expiresAt.toISOString() } } } });

    const strict = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'No query keys', plan: 'enterprise' })).id;
    const strictRs = await createClient(env, { orgId: strict, grantTypes: ['client_credentials'], redirectUris: [], introspect: true, scope: 'workflows:read' });
    const strictBase = await startService(file, { CLIENT_ID: strictRs.clientId, CLIENT_SECRET: strictRs.clientSecret!, ORG_ID: strict });
    const k = (await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, strict, { name: 'q', scopes: ['workflows:read'] } as never)).key;
    await env.server.services.accounts.updateOrganization(CLI_ACTOR, strict, { settings: { allowQueryApiKey: false } });
    const q = await call(strictBase, 'GET', `/whoami?api-key=${k}`);
    expect(q).toMatchObject({ status: 401, body: { error: { code: 'QUERY_API_KEY_DISABLED' } } });
    expect((await call(strictBase, 'GET', '/whoami', { 'x-api-key': k })).status).toBe(200);
  });

  it('rate-limit headers (X-RateLimit-* and the IETF draft\'s) and 429 RATE_LIMITED come from Flowgate', async () => {
    const limited = await startService(file, { RATE_LIMIT: '1' });
    const r = await call(limited, 'GET', '/whoami', bearer(creds.apiKey));
    expect(r.status).toBe(200);
    for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'ratelimit-policy', 'ratelimit']) expect(r.headers.get(h), h).toBeTruthy();
    expect(r.headers.get('ratelimit-policy')).toMatch(/^"read";q=\d+;w=\d+$/);
    const key = (await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'tight', scopes: ['workflows:read'] } as never));
    await env.server.services.rateLimitOverrides.setForKey(CLI_ACTOR, orgId, key.apiKey.id, { read: { limit: 1, window: '1m' } });
    expect((await call(limited, 'GET', '/whoami', bearer(key.key))).status).toBe(200);
    const spent = await call(limited, 'GET', '/whoami', bearer(key.key));
    expect(spent).toMatchObject({ status: 429, body: { error: { code: 'RATE_LIMITED' } } });
    expect(Number(spent.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('misconfiguration is not an outage: a wrong secret or a client without the introspection permission is a 500 logged once with what to fix; an unreachable Flowgate a 503', async () => {
    const wrong = await startService(file, { CLIENT_SECRET: 'not-the-secret' });
    for (let i = 0; i < 3; i++) expect(await call(wrong, 'GET', '/whoami', bearer(creds.apiKey))).toMatchObject({ status: 500, body: { error: { code: 'AUTH_MISCONFIGURED' } } });
    const wrongProc = services.at(-1)!;
    expect(wrongProc.stderr.match(/Flowgate refused this service's client credentials/g)).toHaveLength(1);
    expect(wrongProc.stderr).toMatch(/check clientId and clientSecret/);
    expect(wrongProc.stderr).not.toContain('not-the-secret');

    const plain = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read' });
    const noPermission = await startService(file, { CLIENT_ID: plain.clientId, CLIENT_SECRET: plain.clientSecret! });
    expect(await call(noPermission, 'GET', '/whoami', bearer(creds.apiKey))).toMatchObject({ status: 500, body: { error: { code: 'AUTH_MISCONFIGURED' } } });
    expect(services.at(-1)!.stderr).toMatch(/introspection permission/);

    const unreachable = await startService(file, { ISSUER: `http://127.0.0.1:${await freePort()}` });
    const down = await call(unreachable, 'GET', '/whoami', bearer(creds.apiKey));
    expect(down).toMatchObject({ status: 503, body: { error: { code: 'AUTH_UNAVAILABLE' } } });
    expect(services.at(-1)!.stderr).not.toMatch(/client credentials/);
  });

  it('verifies signed webhooks and refuses forged and replayed ones', async () => {
    const body = JSON.stringify({ type: 'invoice.paid', timestamp: new Date().toISOString(), data: { n: 1 } });
    const id = `msg_${randomBytes(6).toString('hex')}`;
    const signed = (secret: string, msgId = id) => {
      const at = new Date();
      return { 'content-type': 'application/json', 'webhook-id': msgId, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(msgId, at, body) };
    };
    const post = (h: Record<string, string>) => fetch(`${base}/hooks`, { method: 'POST', headers: h, body }).then(async (r) => ({ status: r.status, body: await r.json() }));
    expect(await post(signed(webhookSecret))).toEqual({ status: 202, body: { type: 'invoice.paid' } });
    expect((await post(signed(webhookSecret))).body.error.code).toBe('WEBHOOK_REPLAYED');
    const forged = await post(signed(`whsec_${randomBytes(24).toString('base64')}`, `msg_${randomBytes(6).toString('hex')}`));
    expect(forged).toMatchObject({ status: 401, body: { error: { code: 'INVALID_WEBHOOK_SIGNATURE' } } });
  });
});
