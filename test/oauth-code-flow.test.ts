import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestServer, type TestEnv } from './support/server.js';
import {
  authorize,
  AuthorizeError,
  Browser,
  clientConfig,
  createClient,
  createUser,
  expectOAuthError,
  introspector,
  oidc,
  openConsentPage,
  openLoginPage,
  parseForms,
  REDIRECT_URI,
  tokenRequest,
  type TestClient,
  type TestUser,
} from './support/oauth.js';

let env: TestEnv;
let jwks: ReturnType<typeof createRemoteJWKSet>;
let rs: Awaited<ReturnType<typeof introspector>>;

beforeAll(async () => {
  env = await startTestServer();
  jwks = createRemoteJWKSet(new URL('/jwks', env.url));
  rs = await introspector(env);
});
afterAll(async () => env?.close());

describe('discovery and keys', () => {
  it('serves OpenID and RFC 8414 metadata with the same issuer and endpoints', async () => {
    const oidcDoc: any = await (await fetch(new URL('/.well-known/openid-configuration', env.url))).json();
    const as = await fetch(new URL('/.well-known/oauth-authorization-server', env.url));
    expect(as.status).toBe(200);
    const asDoc: any = await as.json();
    expect(oidcDoc.issuer).toBe(env.url);
    expect(asDoc.issuer).toBe(env.url);
    expect(asDoc.token_endpoint).toBe(oidcDoc.token_endpoint);
    expect(oidcDoc.code_challenge_methods_supported).toEqual(['S256']);
    expect(oidcDoc.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(oidcDoc.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']),
    );
    expect(oidcDoc.revocation_endpoint).toBeTruthy();
    expect(oidcDoc.scopes_supported).toEqual(expect.arrayContaining(['openid', 'offline_access', 'workflows:read', 'runs:read']));
    // openid-client accepts it (issuer validation included).
    const c = await createClient(env);
    const cfg = await clientConfig(env, c);
    expect(cfg.serverMetadata().issuer).toBe(env.url);
  });

  it('publishes ES256 and RS256 public keys only at jwks_uri', async () => {
    const meta: any = await (await fetch(new URL('/.well-known/openid-configuration', env.url))).json();
    const set: any = await (await fetch(meta.jwks_uri)).json();
    const algs = set.keys.map((k: { alg: string }) => k.alg);
    expect(algs).toEqual(expect.arrayContaining(['ES256', 'RS256']));
    for (const k of set.keys) {
      expect(k.kid).toBeTruthy();
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(priv);
    }
  });
});

describe('authorization code + PKCE through the login and consent pages', () => {
  let user: TestUser;
  let client: TestClient;
  beforeAll(async () => {
    user = await createUser(env);
    client = await createClient(env, { orgId: user.orgIds[0] });
  });

  it('signs in, consents, exchanges the code, reads userinfo; the id_token verifies against the JWKS', async () => {
    const r = await authorize(env, { client, user, scope: 'openid email profile' });
    expect(r.pages).toEqual(['login', 'consent']);
    expect(r.callbackUrl.origin + r.callbackUrl.pathname).toBe(REDIRECT_URI);
    expect(r.callbackUrl.searchParams.get('state')).toBe(r.state);
    const t = r.tokens!;
    expect(t.token_type.toLowerCase()).toBe('bearer');
    expect(t.expires_in).toBeGreaterThan(3500);
    const claims = t.claims()!;
    expect(claims.sub).toBe(user.id);
    expect(claims.nonce).toBe(r.nonce);

    const { payload, protectedHeader } = await jwtVerify(t.id_token!, jwks, { issuer: env.url, audience: client.clientId });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.sub).toBe(user.id);

    const info = await oidc.fetchUserInfo(r.config, t.access_token, user.id);
    expect(info.email).toBe(user.email);

    // The opaque access token carries the organization.
    const intro = await oidc.tokenIntrospection(rs.config, t.access_token);
    expect(intro.active).toBe(true);
    expect(intro.org_id).toBe(user.orgIds[0]);
    expect(intro.sub).toBe(user.id);
  });

  it('login and consent forms carry a csrf field; a post without it is refused', async () => {
    const { browser, html, form: login } = await openLoginPage(env, client);
    expect(login.fields.csrf).toMatch(/^[\w-]{20,}$/);
    expect(html).toMatch(/name="email"/);
    const bad = await browser.postForm(new URL(login.action, env.url), { email: user.email, password: user.password, csrf: 'forged' });
    expect(bad.status).toBe(403);

    const fresh = await createClient(env, { orgId: user.orgIds[0] });
    const consent = await openConsentPage(env, { client: fresh, user });
    expect(consent.form.fields.csrf).toMatch(/^[\w-]{20,}$/);
    expect(consent.html).toContain('See your email address');
  });

  it('a JWT access token for the API audience (RFC 9068) carries org_id and verifies against the JWKS', async () => {
    const r = await authorize(env, { client, user, scope: 'openid workflows:read runs:read', resource: env.config.apiAudience });
    expect(r.pages).toEqual(['login', 'consent']);
    const at = r.tokens!.access_token;
    expect(decodeProtectedHeader(at).typ).toBe('at+jwt');
    const { payload } = await jwtVerify(at, jwks, { issuer: env.url, audience: env.config.apiAudience, typ: 'at+jwt' });
    expect(payload.org_id).toBe(user.orgIds[0]);
    expect(payload.sub).toBe(user.id);
    expect(payload.client_id).toBe(client.clientId);
    expect(String(payload.scope).split(' ')).toEqual(expect.arrayContaining(['workflows:read', 'runs:read']));
  });

  it('remembers consent per client and scope set: a second authorization skips the consent page', async () => {
    const u = await createUser(env);
    const c = await createClient(env, { orgId: u.orgIds[0] });
    const first = await authorize(env, { client: c, user: u, scope: 'openid email' });
    expect(first.pages).toEqual(['login', 'consent']);
    // Same browser: no login, no consent.
    const second = await authorize(env, { client: c, user: u, scope: 'openid email', browser: first.browser });
    expect(second.pages).toEqual([]);
    expect(second.tokens?.access_token).toBeTruthy();
    // A fresh browser (new session) signs in again but is not asked again for the same scopes.
    const third = await authorize(env, { client: c, user: u, scope: 'openid email' });
    expect(third.pages).toEqual(['login']);
    // More scopes: asked again.
    const fourth = await authorize(env, { client: c, user: u, scope: 'openid email profile', browser: first.browser });
    expect(fourth.pages).toEqual(['consent']);
  });

  it('deny at consent returns access_denied to the redirect URI', async () => {
    const fresh = await createClient(env, { orgId: user.orgIds[0] });
    const r = await authorize(env, { client: fresh, user, decision: 'deny' });
    expect(r.callbackUrl.origin + r.callbackUrl.pathname).toBe(REDIRECT_URI);
    expect(r.callbackUrl.searchParams.get('error')).toBe('access_denied');
    expect(r.callbackUrl.searchParams.get('state')).toBe(r.state);
    expect(r.code).toBeUndefined();
  });

  it('wrong password on the login page: 401 page and no session', async () => {
    const { browser, authorizeUrl: url, form: login } = await openLoginPage(env, client);
    const res = await browser.postForm(new URL(login.action, env.url), { csrf: login.fields.csrf, email: user.email, password: 'wrong password!' });
    expect(res.status).toBe(401);
    const body = await res.text();
    expect(body).toContain('Email or password is incorrect.');
    expect(body).not.toContain('wrong password!');
    expect(browser.jar.names()).not.toContain('_session');
    // Starting over still asks for a login: nothing was signed in.
    const again = await browser.get(url);
    const page2 = await browser.get(new URL(again.headers.get('location')!, env.url));
    expect(await page2.text()).toMatch(/name="password"/);
  });
});

describe('organizations at consent (tenant boundary)', () => {
  it('a user in two organizations chooses one; the token carries the chosen org_id', async () => {
    const user = await createUser(env, { orgs: 2 });
    const client = await createClient(env);
    const consent = await openConsentPage(env, { client, user });
    expect(consent.html).toMatch(/<select[^>]*name="org_id"/);
    const offered = parseForms(consent.html).find((f) => f.action.endsWith('/confirm'))!.options.org_id;
    expect([...offered].sort()).toEqual([...user.orgIds].sort());

    const second = user.orgIds[1];
    const r = await authorize(env, { client, user, orgId: second, scope: 'openid workflows:read', resource: env.config.apiAudience });
    const { payload } = await jwtVerify(r.tokens!.access_token, jwks, { audience: env.config.apiAudience });
    expect(payload.org_id).toBe(second);

    const first = user.orgIds[0];
    const r2 = await authorize(env, { client, user, orgId: first, scope: 'openid email' });
    const intro = await oidc.tokenIntrospection(rs.config, r2.tokens!.access_token);
    expect(intro.org_id).toBe(first);
  });

  it('choosing another organization later starts a new grant; tokens of the first keep their organization', async () => {
    const user = await createUser(env, { orgs: 2 });
    const client = await createClient(env);
    const [orgA, orgB] = user.orgIds;
    const a = await authorize(env, { client, user, orgId: orgA, scope: 'openid offline_access workflows:read', resource: env.config.apiAudience, params: { prompt: 'consent' } });
    expect(a.pages).toEqual(['login', 'consent']);
    const b = await authorize(env, {
      client,
      user,
      orgId: orgB,
      browser: a.browser,
      scope: 'openid offline_access workflows:read runs:read',
      resource: env.config.apiAudience,
      params: { prompt: 'consent' },
    });
    expect(b.pages).toEqual(['consent']);
    const bAt = await jwtVerify(b.tokens!.access_token, jwks, { audience: env.config.apiAudience });
    expect(bAt.payload.org_id).toBe(orgB);
    expect(String(bAt.payload.scope).split(' ')).toEqual(expect.arrayContaining(['workflows:read', 'runs:read']));
    // The refresh token issued for organization A still acts for A.
    const refreshed = await oidc.refreshTokenGrant(a.config, a.tokens!.refresh_token!, { resource: env.config.apiAudience });
    const aAt = await jwtVerify(refreshed.access_token, jwks, { audience: env.config.apiAudience });
    expect(aAt.payload.org_id).toBe(orgA);
  });

  it('posting an organization the user is not a member of is refused', async () => {
    const user = await createUser(env, { orgs: 2 });
    const stranger = await createUser(env);
    const client = await createClient(env);
    const consent = await openConsentPage(env, { client, user });
    const res = await consent.browser.postForm(new URL(consent.form.action, env.url), { csrf: consent.form.fields.csrf, org_id: stranger.orgIds[0] });
    expect(res.status).toBe(403);
    expect(res.headers.get('location')).toBeNull();
    // Nothing was consented: no consent row for this user and client.
    const rows = await env.server.services.ds.query('SELECT org_id FROM oauth_consents WHERE user_id = $1 AND client_id = $2', [user.id, client.clientId]);
    expect(rows).toEqual([]);
  });
});

describe('refresh tokens', () => {
  it('rotate on every use; reusing a rotated one revokes the whole grant', async () => {
    const user = await createUser(env);
    const client = await createClient(env, { orgId: user.orgIds[0] });
    const r = await authorize(env, { client, user, scope: 'openid offline_access email', params: { prompt: 'consent' } });
    const rt0 = r.tokens!.refresh_token!;
    expect(rt0).toBeTruthy();

    const t1 = await oidc.refreshTokenGrant(r.config, rt0);
    const rt1 = t1.refresh_token!;
    expect(rt1).toBeTruthy();
    expect(rt1).not.toBe(rt0);
    const t2 = await oidc.refreshTokenGrant(r.config, rt1);
    const rt2 = t2.refresh_token!;
    expect(rt2).not.toBe(rt1);
    expect((await oidc.tokenIntrospection(rs.config, t2.access_token)).org_id).toBe(user.orgIds[0]);

    // Reuse of an already-rotated token: refused, and the grant is gone (RFC 9700 §4.14.2).
    await expectOAuthError(oidc.refreshTokenGrant(r.config, rt1), 'invalid_grant');
    await expectOAuthError(oidc.refreshTokenGrant(r.config, rt2), 'invalid_grant');
    expect((await oidc.tokenIntrospection(rs.config, t2.access_token)).active).toBe(false);
  });

  it('revocation (RFC 7009): a revoked refresh token stops working, and so do the grant’s access tokens', async () => {
    const user = await createUser(env);
    const client = await createClient(env, { orgId: user.orgIds[0] });
    const r = await authorize(env, { client, user, scope: 'openid offline_access', params: { prompt: 'consent' } });
    // Use it once (it works, and rotates), then revoke the current one.
    const { access_token, refresh_token } = await oidc.refreshTokenGrant(r.config, r.tokens!.refresh_token!);
    expect((await oidc.tokenIntrospection(rs.config, access_token)).active).toBe(true);
    await oidc.tokenRevocation(r.config, refresh_token!);
    await expectOAuthError(oidc.refreshTokenGrant(r.config, refresh_token!), 'invalid_grant');
    expect((await oidc.tokenIntrospection(rs.config, access_token)).active).toBe(false);
  });

  it('revocation (RFC 7009): a revoked access token stops working; oidc-provider also revokes its grant (§2.1 allows it)', async () => {
    const user = await createUser(env);
    const client = await createClient(env, { orgId: user.orgIds[0] });
    const r = await authorize(env, { client, user, scope: 'openid offline_access', params: { prompt: 'consent' } });
    const { access_token, refresh_token } = r.tokens!;
    expect((await oidc.tokenIntrospection(rs.config, access_token)).active).toBe(true);
    await oidc.tokenRevocation(r.config, access_token);
    expect((await oidc.tokenIntrospection(rs.config, access_token)).active).toBe(false);
    await expectOAuthError(oidc.refreshTokenGrant(r.config, refresh_token!), 'invalid_grant');
  });

  it('a client cannot revoke or use another client’s token', async () => {
    const user = await createUser(env);
    const a = await createClient(env, { orgId: user.orgIds[0] });
    const b = await createClient(env, { orgId: user.orgIds[0] });
    const r = await authorize(env, { client: a, user, scope: 'openid offline_access', params: { prompt: 'consent' } });
    const bCfg = await clientConfig(env, b);
    await expectOAuthError(oidc.refreshTokenGrant(bCfg, r.tokens!.refresh_token!), 'invalid_grant');
    // RFC 7009 §2.2: answered 200 either way, but the token must survive.
    await oidc.tokenRevocation(bCfg, r.tokens!.access_token).catch(() => {});
    expect((await oidc.tokenIntrospection(rs.config, r.tokens!.access_token)).active).toBe(true);
  });
});

describe('authorization code negative cases', () => {
  let user: TestUser;
  let client: TestClient;
  beforeAll(async () => {
    user = await createUser(env);
    client = await createClient(env, { orgId: user.orgIds[0] });
  });

  it('a wrong redirect URI shows an error page and never redirects', async () => {
    const cfg = await clientConfig(env, client);
    const browser = new Browser();
    for (const bad of ['https://evil.example.test/callback', `${REDIRECT_URI}/x`, `${REDIRECT_URI}?a=1`, REDIRECT_URI.replace('https', 'http')]) {
      const url = oidc.buildAuthorizationUrl(cfg, {
        redirect_uri: bad,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      const res = await browser.get(url);
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('redirect_uri');
    }
  });

  it('the code needs the PKCE verifier: missing or wrong gives invalid_grant', async () => {
    const missing = await authorize(env, { client, user, exchange: false });
    const cfg = missing.config;
    const noVerifier = await tokenRequest(
      env,
      { grant_type: 'authorization_code', code: missing.code!, redirect_uri: client.redirectUri, client_id: client.clientId, client_secret: client.clientSecret! },
    );
    expect(noVerifier.status).toBe(400);
    expect(noVerifier.body.error).toBe('invalid_grant');

    const wrong = await authorize(env, { client, user, browser: missing.browser, exchange: false });
    await expectOAuthError(
      oidc.authorizationCodeGrant(cfg, wrong.callbackUrl, { pkceCodeVerifier: oidc.randomPKCECodeVerifier(), expectedState: wrong.state }),
      'invalid_grant',
    );
  });

  it('a replayed code is refused and the tokens issued from it are revoked (RFC 6749 §4.1.2)', async () => {
    const r = await authorize(env, { client, user, scope: 'openid offline_access', params: { prompt: 'consent' } });
    const t = r.tokens!;
    expect((await oidc.tokenIntrospection(rs.config, t.access_token)).active).toBe(true);
    const replay = await tokenRequest(env, {
      grant_type: 'authorization_code',
      code: r.code!,
      redirect_uri: client.redirectUri,
      code_verifier: r.codeVerifier,
      client_id: client.clientId,
      client_secret: client.clientSecret!,
    });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect((await oidc.tokenIntrospection(rs.config, t.access_token)).active).toBe(false);
    await expectOAuthError(oidc.refreshTokenGrant(r.config, t.refresh_token!), 'invalid_grant');
  });

  it('the code is bound to the redirect URI and the client', async () => {
    const other = await createClient(env, { orgId: user.orgIds[0] });
    const r = await authorize(env, { client, user, exchange: false });
    const res = await tokenRequest(env, {
      grant_type: 'authorization_code',
      code: r.code!,
      redirect_uri: client.redirectUri,
      code_verifier: r.codeVerifier,
      client_id: other.clientId,
      client_secret: other.clientSecret!,
    });
    expect(res.body.error).toBe('invalid_grant');
  });

  it('an unknown scope or a plain PKCE method is refused at the authorization endpoint', async () => {
    const cfg = await clientConfig(env, client);
    const browser = new Browser();
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: client.redirectUri,
      scope: 'openid',
      code_challenge: oidc.randomPKCECodeVerifier(),
      code_challenge_method: 'plain',
    });
    const res = await browser.get(url);
    const loc = new URL(res.headers.get('location')!);
    expect(loc.origin + loc.pathname).toBe(REDIRECT_URI);
    expect(loc.searchParams.get('error')).toBe('invalid_request');
  });

  it('AuthorizeError surfaces error pages to tests', async () => {
    const bad = { ...client, redirectUri: 'https://evil.example.test/cb' };
    await expect(authorize(env, { client: bad, user })).rejects.toBeInstanceOf(AuthorizeError);
  });
});

describe('security headers and cookies', () => {
  it('login and consent pages send a strict CSP; cookies are HttpOnly and SameSite=Lax', async () => {
    const user = await createUser(env);
    const client = await createClient(env, { orgId: user.orgIds[0] });
    const { browser, res: login } = await openLoginPage(env, client);
    const consent = await openConsentPage(env, { client, user, browser });
    const consentRes = await browser.get(new URL(consent.form.action.replace(/\/confirm$/, ''), env.url));
    for (const res of [login, consentRes]) {
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toBeTruthy();
      const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src')) ?? csp.split(';').find((d) => d.trim().startsWith('default-src'))!;
      expect(scriptSrc).not.toContain("'unsafe-inline'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toContain('no-store');
    }
    expect(browser.jar.setCookieHeaders.length).toBeGreaterThan(0);
    for (const header of browser.jar.setCookieHeaders) {
      expect(header.toLowerCase()).toContain('httponly');
      expect(header.toLowerCase()).toContain('samesite=lax');
    }
  });
});
