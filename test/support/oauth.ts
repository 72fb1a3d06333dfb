/**
 * Helpers that drive Flowgate's OAuth flows like a browser and a real client would: openid-client
 * for the client side, fetch with a small cookie jar for the login and consent pages (plain form
 * posts, the `csrf` field read from the rendered form).
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { CLI_ACTOR } from '../../src/audit/service.js';
import type { CreateClientInput } from '../../src/oauth/clients-service.js';
import type { TestEnv } from './server.js';

export { oidc };

// ---------------------------------------------------------------------------------------------
// Cookie jar: enough of RFC 6265 for one host (name + path, expiry, deletion).

interface StoredCookie {
  name: string;
  value: string;
  path: string;
  expires?: number;
  attributes: Record<string, string | true>;
}

export class CookieJar {
  private cookies = new Map<string, StoredCookie>();

  /** Every Set-Cookie header seen, raw (for asserting flags). */
  readonly setCookieHeaders: string[] = [];

  store(res: Response, requestUrl: URL): void {
    for (const header of res.headers.getSetCookie()) {
      this.setCookieHeaders.push(header);
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attributes: Record<string, string | true> = {};
      for (const a of attrs) {
        const i = a.indexOf('=');
        if (i === -1) attributes[a.toLowerCase()] = true;
        else attributes[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
      }
      const path = typeof attributes.path === 'string' ? attributes.path : defaultPath(requestUrl.pathname);
      let expires: number | undefined;
      if (typeof attributes['max-age'] === 'string') expires = Date.now() + Number(attributes['max-age']) * 1000;
      else if (typeof attributes.expires === 'string') expires = Date.parse(attributes.expires);
      const key = `${name};${path}`;
      if (expires !== undefined && expires <= Date.now()) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path, expires, attributes });
    }
  }

  header(url: URL): string {
    const now = Date.now();
    return [...this.cookies.values()]
      .filter((c) => (c.expires === undefined || c.expires > now) && pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  names(): string[] {
    return [...this.cookies.values()].map((c) => c.name);
  }

  clear(): void {
    this.cookies.clear();
  }
}

function defaultPath(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function pathMatches(reqPath: string, cookiePath: string): boolean {
  if (reqPath === cookiePath) return true;
  if (!reqPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/';
}

/** A browser: fetch with the jar and no automatic redirects. */
export class Browser {
  readonly jar = new CookieJar();

  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url);
    const headers = new Headers(init.headers);
    const cookie = this.jar.header(u);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(u, { ...init, headers, redirect: 'manual' });
    this.jar.store(res, u);
    return res;
  }

  async get(url: string | URL): Promise<Response> {
    return this.fetch(url);
  }

  async postForm(url: string | URL, fields: Record<string, string>): Promise<Response> {
    return this.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the server-rendered forms.

export interface HtmlForm {
  action: string;
  fields: Record<string, string>;
  /** Values of the <select name="org_id"> options, when present. */
  options: Record<string, string[]>;
}

export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const action = decodeEntities(/action="([^"]*)"/.exec(m[1])?.[1] ?? '');
    const fields: Record<string, string> = {};
    for (const input of m[2].matchAll(/<input\b([^>]*)>/g)) {
      const name = /name="([^"]*)"/.exec(input[1])?.[1];
      if (name) fields[name] = decodeEntities(/value="([^"]*)"/.exec(input[1])?.[1] ?? '');
    }
    const options: Record<string, string[]> = {};
    for (const sel of m[2].matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/g)) {
      const name = /name="([^"]*)"/.exec(sel[1])?.[1];
      if (name) options[name] = [...sel[2].matchAll(/<option\b[^>]*value="([^"]*)"/g)].map((o) => decodeEntities(o[1]));
    }
    forms.push({ action, fields, options });
  }
  return forms;
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export type PageKind = 'login' | 'consent' | 'error' | 'other';

export function pageKind(html: string): PageKind {
  if (/name="password"/.test(html)) return 'login';
  if (/\/confirm"/.test(html)) return 'consent';
  if (/Something went wrong/.test(html)) return 'error';
  return 'other';
}

// ---------------------------------------------------------------------------------------------
// Fixtures: organizations, users, clients.

export const TEST_PASSWORD = 'correct horse battery staple';

export interface TestUser {
  id: string;
  email: string;
  password: string;
  orgIds: string[];
}

/** A user who is a member of `orgs` new organizations. */
export async function createUser(env: TestEnv, opts: { orgs?: number; orgIds?: string[] } = {}): Promise<TestUser> {
  const { accounts } = env.server.services;
  const orgIds = [...(opts.orgIds ?? [])];
  const fresh = opts.orgs ?? (orgIds.length ? 0 : 1);
  for (let i = 0; i < fresh; i++) {
    const org = await accounts.createOrganization(CLI_ACTOR, { name: `Org ${randomBytes(3).toString('hex')}` });
    orgIds.push(org.id);
  }
  const email = `user-${randomBytes(5).toString('hex')}@example.test`;
  let id = '';
  for (const orgId of orgIds) {
    const { user } = await accounts.createUser(CLI_ACTOR, { email, password: TEST_PASSWORD, orgId, role: 'member' });
    id = user.id;
  }
  return { id, email, password: TEST_PASSWORD, orgIds };
}

export async function createOrg(env: TestEnv): Promise<string> {
  const org = await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: `Org ${randomBytes(3).toString('hex')}` });
  return org.id;
}

export interface TestClient {
  clientId: string;
  clientSecret?: string;
  /** null: a platform-wide resource server. */
  orgId: string | null;
  redirectUri: string;
  /** Private key for private_key_jwt clients. */
  privateKey?: CryptoKey;
  publicJwk?: JWK;
}

export const REDIRECT_URI = 'https://app.example.test/callback';

/** Registers a client through the clients service (what the CLI calls). */
export async function createClient(
  env: TestEnv,
  opts: Partial<CreateClientInput> & { orgId?: string | null; keyAlg?: 'ES256' | 'RS256' | 'EdDSA' } = {},
): Promise<TestClient> {
  const orgId = opts.orgId === null ? null : (opts.orgId ?? (await createOrg(env)));
  const redirectUris = opts.redirectUris ?? [REDIRECT_URI];
  let privateKey: CryptoKey | undefined;
  let publicJwk: JWK | undefined;
  let jwks = opts.jwks;
  if (opts.authMethod === 'private_key_jwt' && !jwks && !opts.jwksUri) {
    const alg = opts.keyAlg ?? 'ES256';
    const pair = await generateKeyPair(alg, { extractable: true });
    privateKey = pair.privateKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), alg, use: 'sig', kid: `k-${randomBytes(4).toString('hex')}` };
    jwks = { keys: [publicJwk as Record<string, unknown>] };
  }
  const { keyAlg: _k, ...input } = opts;
  const { client, clientSecret } = await env.server.services.clients.create(CLI_ACTOR, {
    name: 'Test app',
    ...input,
    orgId,
    redirectUris,
    ...(jwks && { jwks }),
  });
  return { clientId: client.client_id, clientSecret, orgId, redirectUri: redirectUris[0], privateKey, publicJwk };
}

/** openid-client configuration for a test client, discovered from the running server. */
export async function clientConfig(env: TestEnv, c: TestClient, auth?: oidc.ClientAuth): Promise<oidc.Configuration> {
  const method = auth ?? defaultAuth(c);
  return oidc.discovery(new URL(env.url), c.clientId, c.clientSecret ? { client_secret: c.clientSecret } : {}, method, {
    execute: [oidc.allowInsecureRequests],
  });
}

function defaultAuth(c: TestClient): oidc.ClientAuth {
  if (c.privateKey) return oidc.PrivateKeyJwt(c.privateKey, { [oidc.modifyAssertion]: (h) => void (h.kid = c.publicJwk?.kid) });
  if (c.clientSecret) return oidc.ClientSecretBasic(c.clientSecret);
  return oidc.None();
}

// ---------------------------------------------------------------------------------------------
// The authorization code flow through the login and consent pages.

export interface AuthorizeOptions {
  client: TestClient;
  config?: oidc.Configuration;
  scope?: string;
  resource?: string;
  user: TestUser;
  /** The organization to choose on the consent page (default: the user's first). */
  orgId?: string;
  /** What to do at consent (default approve). */
  decision?: 'approve' | 'deny';
  /** Reuse a browser (session cookies) across authorizations. */
  browser?: Browser;
  /** Extra authorization request parameters; `code_challenge: ''` leaves PKCE out. */
  params?: Record<string, string>;
  /** Skip PKCE entirely. */
  noPkce?: boolean;
  /** Exchange the code for tokens (default true). */
  exchange?: boolean;
}

export interface AuthorizeResult {
  browser: Browser;
  config: oidc.Configuration;
  /** The URL the server redirected the browser to (the client's redirect URI with the response). */
  callbackUrl: URL;
  code?: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Pages the browser saw, in order. */
  pages: PageKind[];
  tokens?: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
}

export async function authorize(env: TestEnv, o: AuthorizeOptions): Promise<AuthorizeResult> {
  const config = o.config ?? (await clientConfig(env, o.client));
  const browser = o.browser ?? new Browser();
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const params: Record<string, string> = {
    redirect_uri: o.client.redirectUri,
    scope: o.scope ?? 'openid email profile',
    state,
    nonce,
    ...(!o.noPkce && { code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256' }),
    ...(o.resource && { resource: o.resource }),
    ...o.params,
  };
  const url = oidc.buildAuthorizationUrl(config, params);
  const pages: PageKind[] = [];
  const callbackUrl = await driveBrowser(env, browser, url, o, pages);
  const code = callbackUrl.searchParams.get('code') ?? undefined;
  const result: AuthorizeResult = { browser, config, callbackUrl, code, state, nonce, codeVerifier, pages };
  if (code && o.exchange !== false) {
    result.tokens = await oidc.authorizationCodeGrant(
      config,
      callbackUrl,
      { pkceCodeVerifier: o.noPkce ? undefined : codeVerifier, expectedState: state, expectedNonce: params.scope.split(' ').includes('openid') ? nonce : undefined },
      o.resource ? { resource: o.resource } : undefined,
    );
  }
  return result;
}

/**
 * For clients built with other libraries: follows an authorization URL the library built through
 * the login and consent pages, as `user`, and returns the URL the browser was sent back to.
 */
export async function followAuthorization(
  env: TestEnv,
  url: URL,
  user: TestUser,
  opts: { browser?: Browser; orgId?: string; decision?: 'approve' | 'deny' } = {},
): Promise<URL> {
  const o = { user, orgId: opts.orgId, decision: opts.decision } as AuthorizeOptions;
  return driveBrowser(env, opts.browser ?? new Browser(), url, o, []);
}

/** Follows redirects, signs in and answers consent until the browser lands on the redirect URI. */
async function driveBrowser(env: TestEnv, browser: Browser, start: URL, o: AuthorizeOptions, pages: PageKind[]): Promise<URL> {
  let res = await browser.get(start);
  for (let step = 0; step < 20; step++) {
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, env.url);
      if (next.origin !== new URL(env.url).origin) return next;
      res = await browser.get(next);
      continue;
    }
    const html = await res.text();
    const kind = pageKind(html);
    pages.push(kind);
    const forms = parseForms(html);
    if (kind === 'login') {
      const login = forms.find((f) => 'password' in f.fields)!;
      res = await browser.postForm(new URL(login.action, env.url), { csrf: login.fields.csrf, email: o.user.email, password: o.user.password });
      continue;
    }
    if (kind === 'consent') {
      if (o.decision === 'deny') {
        const abort = forms.find((f) => f.action.endsWith('/abort'))!;
        res = await browser.postForm(new URL(abort.action, env.url), { csrf: abort.fields.csrf });
        continue;
      }
      const confirm = forms.find((f) => f.action.endsWith('/confirm'))!;
      const orgId = o.orgId ?? confirm.fields.org_id ?? confirm.options.org_id?.[0] ?? o.user.orgIds[0];
      res = await browser.postForm(new URL(confirm.action, env.url), { csrf: confirm.fields.csrf, org_id: orgId });
      continue;
    }
    throw new AuthorizeError(res.status, kind, html);
  }
  throw new Error('too many steps in the authorization flow');
}

export class AuthorizeError extends Error {
  constructor(
    readonly status: number,
    readonly kind: PageKind,
    readonly html: string,
  ) {
    const said = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').replace(/^.*Flowgate /, '').slice(0, 200);
    super(`authorization flow stopped on a ${kind} page (HTTP ${status}): ${said}`);
  }
}

/** Runs the flow up to the consent page and returns it (for tests that post their own answer). */
/**
 * Starts an authorization request for `client` (openid, PKCE) and follows it to the login page:
 * the authorization URL, the login page's response and HTML, and its login form.
 */
export async function openLoginPage(
  env: TestEnv,
  client: TestClient,
  browser = new Browser(),
): Promise<{ browser: Browser; authorizeUrl: URL; res: Response; html: string; form: HtmlForm }> {
  const cfg = await clientConfig(env, client);
  const authorizeUrl = oidc.buildAuthorizationUrl(cfg, {
    redirect_uri: client.redirectUri,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const first = await browser.get(authorizeUrl);
  const res = await browser.get(new URL(first.headers.get('location')!, env.url));
  const html = await res.text();
  const form = parseForms(html).find((f) => 'password' in f.fields)!;
  return { browser, authorizeUrl, res, html, form };
}

export async function openConsentPage(env: TestEnv, o: Omit<AuthorizeOptions, 'decision'>): Promise<{ browser: Browser; form: HtmlForm; html: string; status: number }> {
  const config = o.config ?? (await clientConfig(env, o.client));
  const browser = o.browser ?? new Browser();
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: o.client.redirectUri,
    scope: o.scope ?? 'openid email',
    state: oidc.randomState(),
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...o.params,
  });
  let res = await browser.get(url);
  for (let step = 0; step < 20; step++) {
    if (res.status >= 300 && res.status < 400) {
      res = await browser.get(new URL(res.headers.get('location')!, env.url));
      continue;
    }
    const html = await res.text();
    const kind = pageKind(html);
    if (kind === 'consent') return { browser, form: parseForms(html).find((f) => f.action.endsWith('/confirm'))!, html, status: res.status };
    if (kind !== 'login') throw new AuthorizeError(res.status, kind, html);
    const login = parseForms(html).find((f) => 'password' in f.fields)!;
    res = await browser.postForm(new URL(login.action, env.url), { csrf: login.fields.csrf, email: o.user.email, password: o.user.password });
  }
  throw new Error('too many steps');
}

/** A raw token endpoint call (for negative cases openid-client would refuse to send). */
export async function tokenRequest(env: TestEnv, body: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(new URL('/token', env.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(body).toString(),
  });
  return { status: res.status, body: await res.json() };
}

export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** An introspection-capable resource server client (oidc-provider introspection). */
export async function introspector(env: TestEnv): Promise<{ client: TestClient; config: oidc.Configuration }> {
  const client = await createClient(env, { orgId: null, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  return { client, config: await clientConfig(env, client) };
}

/** Asserts an openid-client call failed with this RFC 6749 error code; returns the error. */
export async function expectOAuthError(p: Promise<unknown>, code: string): Promise<{ error: string; error_description?: string; status: number }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof oidc.ResponseBodyError) {
      if (err.error !== code) throw new Error(`expected ${code}, got ${err.error}: ${err.error_description}`);
      return { error: err.error, error_description: err.error_description, status: err.status };
    }
    // 401s come with a WWW-Authenticate challenge (RFC 6749 §5.2); the body still has the error.
    if (err instanceof oidc.WWWAuthenticateChallengeError) {
      const body = (await err.response.json().catch(() => ({}))) as { error?: string; error_description?: string };
      const error = body.error ?? err.cause[0]?.parameters.error;
      if (error !== code) throw new Error(`expected ${code}, got ${error}: ${body.error_description}`);
      return { error, error_description: body.error_description, status: err.status };
    }
    throw err;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}
