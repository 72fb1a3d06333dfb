import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import { csrfToken } from '../src/http/csrf.js';
import { INTROSPECTION_PATH } from '../src/endpoints/introspection.js';
import { RATELIMIT_CHECK_PATH } from '../src/endpoints/ratelimit-check.js';
import { REVOCATION_PATH } from '../src/endpoints/revocation.js';
import { TOKEN_PATH } from '../src/endpoints/token.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, Browser, createClient, createUser, parseForms, type TestClient, type TestUser } from './support/oauth.js';

/**
 * Generated malformed input (NUL, lone surrogates, huge and deeply nested values, repeated
 * parameters, wrong types and content types) against every route the app registers, discovered at
 * run time: the Koa routers' stacks, the provider's endpoints from its discovery document, and the
 * endpoints served in front of the provider. No answer may be a 5xx, and no secret may reach the log.
 *
 * FUZZ_RUNS sets the generated requests per route (default 6, well under a minute); FUZZ_SEED
 * replays a failing run (fast-check prints the seed and the shrunk counterexample).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 6);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

// Every router the app mounts calls routes(): recording `this` there discovers them all, including
// routers added later, without the app exposing anything for tests.
const routers = new Set<Router>();
const originalRoutes = Router.prototype.routes;
Router.prototype.routes = function (this: Router, ...args: Parameters<Router['routes']>) {
  routers.add(this);
  return originalRoutes.apply(this, args);
};

interface Route {
  method: string;
  path: string;
  origin: 'router' | 'provider' | 'front';
}

let env: TestEnv;
let orgId: string;
let apiKey: string;
let rs: TestClient;
let user: TestUser;
let sessionId: string;
let sessionCookie: string;
let invitationToken: string;
const secrets: Record<string, string> = {};

beforeAll(async () => {
  env = await startTestServer({
    // Limits would turn most generated requests into 429s before they reach any code worth fuzzing.
    RATE_LIMITS: JSON.stringify({ management: { limit: 100000, window: 60 }, token: { limit: 100000, window: 60 }, tokenFailuresIp: { limit: 100000, window: 60 }, tokenFailuresClient: { limit: 100000, window: 60 }, loginIp: { limit: 100000, window: 60 }, loginAccount: { limit: 100000, window: 60 } }),
  });
  Router.prototype.routes = originalRoutes;
  const s = env.server.services;
  user = await createUser(env);
  orgId = user.orgIds[0];
  await s.accounts.changeRole(CLI_ACTOR, orgId, user.id, 'owner');
  apiKey = (await s.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'fuzz', preset: 'full_access' } as any)).key;
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  invitationToken = (await s.invitations.invite(CLI_ACTOR, orgId, { email: `inv-${randomBytes(4).toString('hex')}@example.test`, role: 'member' })).token;
  const browser = new Browser();
  const login = parseForms(await (await browser.get(`${env.url}/dashboard/login`)).text())[0];
  await browser.postForm(`${env.url}/dashboard/login`, { csrf: login.fields.csrf, email: user.email, password: user.password });
  sessionId = browser.jar.header(new URL(`${env.url}/dashboard`)).match(/flowgate_dash=([^;]+)/)![1];
  sessionCookie = `flowgate_dash=${sessionId}`;
  Object.assign(secrets, { apiKey, rsSecret: rs.clientSecret!, sessionId, invitationToken, password: user.password });
});
afterAll(async () => {
  Router.prototype.routes = originalRoutes;
  await env?.close();
});

async function discoverRoutes(): Promise<Route[]> {
  const out = new Map<string, Route>();
  const add = (r: Route) => out.set(`${r.method} ${r.path}`, r);
  for (const router of routers) {
    for (const layer of router.stack) {
      for (const method of layer.methods) if (method !== 'HEAD') add({ method, path: String(layer.path), origin: 'router' });
    }
  }
  const meta = (await (await fetch(`${env.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  for (const [name, value] of Object.entries(meta)) {
    if (typeof value !== 'string' || !value.startsWith(env.url) || !/(_endpoint|_uri)$/.test(name)) continue;
    const path = new URL(value).pathname;
    for (const method of ['GET', 'POST']) add({ method, path, origin: 'provider' });
  }
  // Served in front of the provider (the check endpoint is not in the discovery document).
  for (const path of [TOKEN_PATH, INTROSPECTION_PATH, REVOCATION_PATH, RATELIMIT_CHECK_PATH]) for (const method of ['GET', 'POST']) add({ method, path, origin: 'front' });
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------------
// Generators.

const nasty = fc.constantFrom('\u0000', '\ud800', '\udfff', '\u0000\u0000', 'a\u0000b', '\ud83d', '\ufffe', '\u202e', '%00', '%ED%A0%80', '../', '%2e%2e%2f', "'; DROP TABLE users; --", '{{7*7}}', '<script>', '\r\n', ' ');
const plainText = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), nasty, fc.string({ maxLength: 10 })).map(([a, b, c]) => a + b + c) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 120_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('', '0', '-1', '1e300', 'NaN', 'null', 'true', '[]', '{}', '00000000-0000-4000-8000-000000000000') },
);
/** Body values: bodies are never logged, so the real secrets (read when generated) travel there too. */
const text = fc.oneof({ weight: 9, arbitrary: plainText }, { weight: 1, arbitrary: fc.constantFrom('apiKey', 'rsSecret', 'password').map((k) => secrets[k] ?? k) });
const fieldName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('name', 'url', 'email', 'password', 'password_confirm', 'csrf', 'token', 'client_id', 'grant_type', 'scope', 'scopes', 'preset', 'limits', 'events', 'description', 'role', 'team_id', 'workflow_id', 'expires_at', 'grace_seconds', 'category', 'key', 'org_id', 'redirect_uris', 'introspect', 'enabled', 'subject_token', 'code', 'refresh_token', 'next', 'action', 'cursor', 'limit', 'permissions', 'expiration', 'jwks', 'jwks_uri', 'kind', 'client_secret', 'client_assertion', 'client_assertion_type', 'token_type_hint', 'ratelimit_category', 'ratelimit_ip', 'response_type', 'redirect_uri') },
  { weight: 1, arbitrary: plainText },
);
const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fieldName, tie('v'), { maxKeys: 5 }),
  ),
})).v;
const deep = fc.integer({ min: 30, max: 3000 }).map((n) => '['.repeat(n) + ']'.repeat(n));
const pairsOf = (value: fc.Arbitrary<string>) => fc.array(fc.tuple(fieldName, value), { maxLength: 6 }).chain((ps) =>
  // Repeated parameters: some pairs twice.
  fc.subarray(ps).map((again) => [...ps, ...again]),
);
/** A value that always holds something malformed. */
const malformed = fc.tuple(fc.string({ maxLength: 8 }), nasty, fc.string({ maxLength: 8 })).map(([a, b, c]) => a + b + c);
const pairs = fc.oneof(pairsOf(text), pairsOf(malformed));

/** Percent-encodes like a client that does not care about UTF-8: lone surrogates become CESU bytes. */
function enc(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += c >= 0xd800 && c <= 0xdfff ? `%ED%${(0xa0 | ((c >> 6) & 0x1f)).toString(16).toUpperCase()}%${(0x80 | (c & 0x3f)).toString(16).toUpperCase()}` : encodeURIComponent(ch);
  }
  return out;
}
const formOf = (ps: [string, string][]) => ps.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');

/** A real secret (read when generated, after setup), under a name that carries secrets. */
const secretPair = fc
  .tuple(fc.constantFrom('api-key', 'api%2Dkey', 'access_token', 'client_secret', 'code', 'token', 'state'), fc.constantFrom('apiKey', 'rsSecret', 'sessionId', 'invitationToken', 'password'))
  .map(([name, which]) => [name, secrets[which]] as [string, string]);
// Query values are logged (redacted by name): secrets go only under names that carry them.
const queryPairs = fc.tuple(pairsOf(plainText), fc.option(secretPair)).map(([ps, secret]) => (secret ? [...ps, secret] : ps));

const body = fc.oneof(
  fc.constant({ type: undefined as string | undefined, data: undefined as string | undefined }),
  jsonValue.map((v) => ({ type: 'application/json', data: JSON.stringify(v) })),
  fc.dictionary(fieldName, jsonValue, { maxKeys: 6 }).map((v) => ({ type: 'application/json', data: JSON.stringify(v) })),
  deep.map((d) => ({ type: 'application/json', data: d })),
  fc.string({ maxLength: 60 }).map((s) => ({ type: 'application/json', data: s })),
  pairs.map((ps) => ({ type: 'application/x-www-form-urlencoded', data: formOf(ps) })),
  pairs.map((ps) => ({ type: 'application/x-www-form-urlencoded', data: ps.map(([k, v]) => `${enc(k)}[${enc(v)}][a][b][c][d][e]=1`).join('&') })),
  fc.tuple(fc.constantFrom('text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded; charset=latin1', ''), fc.string({ maxLength: 60 })).map(([type, data]) => ({
    type: type || undefined,
    data,
  })),
);

type Auth = 'none' | 'apiKey' | 'bearerJunk' | 'basic' | 'session';
const auth = fc.constantFrom<Auth>('none', 'apiKey', 'apiKey', 'bearerJunk', 'basic', 'session', 'session');

const pathParam = (name: string) =>
  fc.oneof(
    { weight: 2, arbitrary: plainText },
    { weight: 1, arbitrary: fc.constant(name === 'orgId' ? orgId : name === 'token' ? invitationToken : '00000000-0000-4000-8000-000000000000') },
    { weight: 1, arbitrary: fc.uuid() },
  );

function requestFor(route: Route) {
  const names = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
  return fc.record({
    params: fc.tuple(...names.map(pathParam)),
    query: queryPairs,
    body,
    auth,
  });
}

async function send(route: Route, input: { params: string[]; query: [string, string][]; body: { type?: string; data?: string }; auth: Auth }) {
  let i = 0;
  // Strip the router's regexp syntax (optional groups) and fill the parameters.
  const path = String(route.path).replace(/\(\?:[^)]*\)/g, '').replace(/:(\w+)/g, () => enc(input.params[i++] ?? 'x'));
  const query = input.query.length ? `?${input.query.map(([k, v]) => (k.includes('%') ? `${k}=${enc(v)}` : `${enc(k)}=${enc(v)}`)).join('&')}` : '';
  const headers: Record<string, string> = {};
  if (input.auth === 'apiKey') headers['x-api-key'] = apiKey;
  if (input.auth === 'bearerJunk') headers.authorization = `Bearer ${randomBytes(24).toString('base64url')}`;
  if (input.auth === 'basic') headers.authorization = basicAuth(rs.clientId, rs.clientSecret!);
  if (input.auth === 'session') {
    headers.cookie = sessionCookie;
    headers['x-csrf-token'] = csrfToken(env.config.cookieSecrets[0], `dash:${sessionId}`);
  }
  let data = route.method === 'GET' || route.method === 'HEAD' ? undefined : input.body.data;
  if (input.auth === 'session' && input.body.type === 'application/x-www-form-urlencoded' && data !== undefined) {
    data = `csrf=${csrfToken(env.config.cookieSecrets[0], `dash:${sessionId}`)}&${data}`;
  }
  if (data !== undefined && input.body.type) headers['content-type'] = input.body.type;
  const url = `${route.method} ${path}${query}`.slice(0, 300);
  // A response a standard client cannot read (oversized headers, a reset connection) fails too.
  const res = await fetch(`${env.url}${path}${query}`, { method: route.method, headers, body: data, redirect: 'manual', signal: AbortSignal.timeout(15_000) }).catch((err: Error & { cause?: { code?: string } }) => {
    throw new Error(`no readable answer (${err.cause?.code ?? err.message}) for ${url}`);
  });
  await res.arrayBuffer();
  return { status: res.status, url };
}

describe('fuzzing every route', () => {
  it('discovers the routes, and none answers 5xx to generated malformed input', async () => {
    const routes = await discoverRoutes();
    // Discovery found the app, not an empty list: routers, provider endpoints and the front ones.
    expect(routes.filter((r) => r.origin === 'router').length).toBeGreaterThan(40);
    expect(routes.some((r) => r.path === '/api/v1/webhooks/:id' && r.method === 'PATCH')).toBe(true);
    expect(routes.some((r) => r.path === '/dashboard/invitations/:token' && r.method === 'POST')).toBe(true);
    expect(routes.some((r) => r.path === '/auth' && r.origin === 'provider')).toBe(true);
    const failures: string[] = [];
    for (const route of routes) {
      await fc
        .assert(
          fc.asyncProperty(requestFor(route), async (input) => {
            const r = await send(route, input);
            if (r.status >= 500) throw new Error(`${r.status} for ${r.url}`);
          }),
          { numRuns: RUNS, seed: SEED, endOnFailure: true },
        )
        .catch((err: Error) => {
          const lines = err.message.split('\n');
          const seed = lines.find((l) => l.includes('seed')) ?? '';
          const cause = lines.find((l) => l.startsWith('Got error')) ?? lines[lines.length - 1];
          failures.push(`${route.method} ${route.path}: ${cause.slice(0, 300)} ${seed.slice(0, 120)}`);
        });
    }
    expect(failures).toEqual([]);
  }, 600_000);

  it('no secret sent along reached the log', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const text = env.logs.text;
    expect(env.logs.lines.filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThan(100);
    const leaked = Object.entries(secrets).filter(([, v]) => text.includes(v)).map(([k, v]) => `${k}: ${env.logs.lines.find((l) => l.includes(v))!.slice(0, 400)}`);
    expect(leaked).toEqual([]);
  });
});
