/**
 * The dashboard at the HTTP level: sign-in through the shared login template, session cookie flags,
 * CSRF on every POST, escaping, tenant and role boundaries tried by editing URLs, sign-out, the
 * last-owner rule, invitation links and the JSON API with a dashboard session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { Browser, createOrg, parseForms, TEST_PASSWORD } from './support/oauth.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { OAuthConsentEntity } from '../src/oauth/entities.js';

let env: TestEnv;
let orgA: string;
let orgB: string;
const owner = { email: 'owner-http@example.test', id: '' };
const member = { email: 'member-http@example.test', id: '' };

beforeAll(async () => {
  // Every test here signs in afresh, as the same few users, from 127.0.0.1: lift the sign-in limits (tested in ratelimit-login).
  env = await startTestServer({ RATE_LIMITS: JSON.stringify({ loginIp: { limit: 10_000, window: '5m' }, loginAccount: { limit: 10_000, window: '1m' } }) });
  orgA = await createOrg(env);
  orgB = await createOrg(env);
  const { accounts } = env.server.services;
  owner.id = (await accounts.createUser(CLI_ACTOR, { email: owner.email, password: TEST_PASSWORD, orgId: orgA, role: 'owner' })).user.id;
  member.id = (await accounts.createUser(CLI_ACTOR, { email: member.email, password: TEST_PASSWORD, orgId: orgA, role: 'member' })).user.id;
  await accounts.createUser(CLI_ACTOR, { email: 'b-owner@example.test', password: TEST_PASSWORD, orgId: orgB, role: 'owner' });
});

afterAll(async () => {
  await env?.close();
});

const url = (p: string) => new URL(p, env.url);

async function signIn(email: string, password = TEST_PASSWORD): Promise<Browser> {
  const b = new Browser();
  const page = await b.get(url('/dashboard'));
  expect(page.status).toBe(200);
  const form = parseForms(await page.text())[0];
  const res = await b.postForm(url(form.action), { csrf: form.fields.csrf, email, password });
  expect(res.status).toBe(302);
  return b;
}

/** The csrf token of a signed-in page. */
async function csrfOf(b: Browser, path: string): Promise<string> {
  const res = await b.get(url(path));
  expect(res.status).toBe(200);
  return parseForms(await res.text()).find((f) => f.fields.csrf)!.fields.csrf;
}

describe('sign-in and session', () => {
  it('GET /dashboard without a session shows the OAuth login template (email, password, csrf)', async () => {
    const res = await fetch(url('/dashboard'));
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('name="email"');
    expect(html).toContain('name="password"');
    expect(html).toContain('name="csrf"');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
  });

  it('wrong password: 401 with the message next to the form; the login POST needs its csrf token', async () => {
    const b = new Browser();
    const form = parseForms(await (await b.get(url('/dashboard'))).text())[0];
    const bad = await b.postForm(url(form.action), { csrf: form.fields.csrf, email: owner.email, password: 'nope-nope-nope' });
    expect(bad.status).toBe(401);
    expect(await bad.text()).toContain('Email or password is incorrect.');
    const forged = await b.postForm(url(form.action), { email: owner.email, password: TEST_PASSWORD });
    expect(forged.status).toBe(403);
  });

  it('sets an HttpOnly, SameSite=Lax session cookie (not Secure over http) and lands on the organization', async () => {
    const b = await signIn(owner.email);
    const cookie = b.jar.setCookieHeaders.find((h) => h.startsWith('flowgate_dash='))!;
    expect(cookie).toMatch(/httponly/i);
    expect(cookie).toMatch(/samesite=lax/i);
    expect(cookie).not.toMatch(/;\s*secure/i);
    const home = await b.get(url('/dashboard'));
    expect(home.status).toBe(302);
    expect(home.headers.get('location')).toBe(`/dashboard/orgs/${orgA}/api-keys`);
    const page = await b.get(url(home.headers.get('location')!));
    const html = await page.text();
    for (const link of ['API Keys', 'OAuth Apps', 'Authorized Apps', 'Members', 'Audit Log', 'Settings']) expect(html).toContain(`>${link}</a>`);
    expect(html).toContain('No API keys yet');
  });

  it('the session cookie is Secure behind a trusted https proxy', async () => {
    const proxied = await startTestServer({ TRUST_PROXY: 'true' });
    try {
      const b = new Browser();
      const headers = { 'x-forwarded-proto': 'https' };
      const page = await b.fetch(new URL('/dashboard', proxied.url), { headers });
      const form = parseForms(await page.text())[0];
      const org = await createOrg(proxied);
      await proxied.server.services.accounts.createUser(CLI_ACTOR, { email: 'p@example.test', password: TEST_PASSWORD, orgId: org });
      const res = await b.fetch(new URL(form.action, proxied.url), {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: form.fields.csrf, email: 'p@example.test', password: TEST_PASSWORD }).toString(),
      });
      expect(res.status).toBe(302);
      expect(b.jar.setCookieHeaders.find((h) => h.startsWith('flowgate_dash='))).toMatch(/;\s*secure/i);
    } finally {
      await proxied.close();
    }
  });

  it('sign-out ends the session on the server: the old cookie no longer works', async () => {
    const b = await signIn(owner.email);
    const cookie = b.jar.header(url('/dashboard'));
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/api-keys`);
    const out = await b.postForm(url('/dashboard/logout'), { csrf });
    expect(out.status).toBe(302);
    const replay = await fetch(url(`/dashboard/orgs/${orgA}/api-keys`), { headers: { cookie }, redirect: 'manual' });
    expect(replay.status).toBe(302);
    expect(replay.headers.get('location')).toMatch(/^\/dashboard\/login/);
  });
});

describe('CSRF, escaping and boundaries', () => {
  it('a forged POST with a valid session cookie and no token is refused with 403, and creates nothing', async () => {
    const b = await signIn(owner.email);
    const forged = await b.postForm(url(`/dashboard/orgs/${orgA}/api-keys/new`), { name: 'forged', permissions: 'read_only', expiration: 'never' });
    expect(forged.status).toBe(403);
    const wrong = await b.postForm(url(`/dashboard/orgs/${orgA}/api-keys/new`), { csrf: 'x'.repeat(43), name: 'forged', permissions: 'read_only', expiration: 'never' });
    expect(wrong.status).toBe(403);
    const keys = await env.server.services.apiKeys.list({ actor: CLI_ACTOR }, orgA);
    expect(keys.some((k) => k.name === 'forged')).toBe(false);
  });

  it('a key named <script>alert(1)</script> shows as text; the full key is shown once', async () => {
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/api-keys/new`);
    const res = await b.postForm(url(`/dashboard/orgs/${orgA}/api-keys/new`), { csrf, name: '<script>alert(1)</script>', permissions: 'read_only', expiration: 'never' });
    expect(res.status).toBe(201);
    const html = await res.text();
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const key = /id="secret-value"[^>]*>([^<]+)</.exec(html)![1];
    expect(key).toMatch(/^sk-[0-9A-Za-z]{38}$/);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const list = await (await b.get(url(`/dashboard/orgs/${orgA}/api-keys`))).text();
    expect(list).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(list).not.toContain('<script>alert(1)</script>');
    expect(list).not.toContain(key);
    expect(list).toContain(`${key.slice(0, 7)}…${key.slice(-4)}`);
  });

  it('a member sees other members’ keys masked, cannot delete them, and cannot open admin pages by URL', async () => {
    const ownerKey = await env.server.services.apiKeys.create(
      { actor: CLI_ACTOR, principal: { kind: 'session', orgId: orgA, userId: owner.id, role: 'owner', scopes: ['api_keys:write'] } },
      orgA,
      { name: 'owner key', preset: 'read_only' },
    );
    const b = await signIn(member.email);
    const list = await (await b.get(url(`/dashboard/orgs/${orgA}/api-keys`))).text();
    expect(list).toContain('owner key');
    expect(list).not.toContain(`${ownerKey.key.slice(0, 7)}…`);
    expect(list).not.toContain(`/api-keys/${ownerKey.apiKey.id}/delete`);
    expect(list).not.toContain('>OAuth Apps</a>');
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/api-keys/new`);
    expect((await b.get(url(`/dashboard/orgs/${orgA}/api-keys/${ownerKey.apiKey.id}/delete`))).status).toBe(403);
    const del = await b.postForm(url(`/dashboard/orgs/${orgA}/api-keys/${ownerKey.apiKey.id}/delete`), { csrf });
    expect(del.status).toBe(403);
    expect(await del.text()).toContain('Members can manage only their own API keys');
    for (const p of ['oauth-apps', 'oauth-apps/new', 'audit-log', 'webhooks']) {
      expect((await b.get(url(`/dashboard/orgs/${orgA}/${p}`))).status, p).toBe(403);
    }
    expect((await b.postForm(url(`/dashboard/orgs/${orgA}/members/invite`), { csrf, email: 'x@example.test', role: 'admin' })).status).toBe(403);
    expect((await b.postForm(url(`/dashboard/orgs/${orgA}/members/${owner.id}/remove`), { csrf })).status).toBe(403);
    expect((await b.postForm(url(`/dashboard/orgs/${orgA}/settings`), { csrf, name: 'hijacked' })).status).toBe(403);
    // Another organization's pages: as if they did not exist.
    for (const p of ['api-keys', 'members', 'settings', 'oauth-apps']) expect((await b.get(url(`/dashboard/orgs/${orgB}/${p}`))).status, p).toBe(404);
    expect((await b.postForm(url(`/dashboard/orgs/${orgB}/api-keys/new`), { csrf, name: 'x', permissions: 'read_only' })).status).toBe(404);
  });

  it('an owner cannot reach another organization’s objects through their own organization’s URL', async () => {
    const bKey = await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgB, { name: 'b key', preset: 'read_only' });
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/api-keys/new`);
    expect((await b.get(url(`/dashboard/orgs/${orgA}/api-keys/${bKey.apiKey.id}/roll`))).status).toBe(404);
    expect((await b.postForm(url(`/dashboard/orgs/${orgA}/api-keys/${bKey.apiKey.id}/delete`), { csrf })).status).toBe(404);
    const app = await env.server.services.clients.create(CLI_ACTOR, { orgId: orgB, name: 'b app', redirectUris: ['https://b.example.test/cb'] });
    expect((await b.postForm(url(`/dashboard/orgs/${orgA}/oauth-apps/${app.client.client_id}/delete`), { csrf })).status).toBe(404);
    expect(await env.server.services.clients.get(app.client.client_id)).not.toBeNull();
  });
});

describe('OAuth apps', () => {
  it('registers a single-page app (PKCE, no secret) and a private_key_jwt service; errors sit next to their field', async () => {
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/oauth-apps/new`);
    const spa = await b.postForm(url(`/dashboard/orgs/${orgA}/oauth-apps/new`), { csrf, name: 'SPA', kind: 'public', redirect_uris: 'https://spa.example.test/cb' });
    const spaHtml = await spa.text();
    expect(spa.status).toBe(201);
    const spaId = /id="client-id"[^>]*>([^<]+)</.exec(spaHtml)![1];
    expect((await env.server.services.clients.get(spaId))?.metadata.token_endpoint_auth_method).toBe('none');

    const { generateKeyPair, exportJWK } = await import('jose');
    const jwk = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
    const body = new URLSearchParams({ csrf, name: 'Nightly sync', kind: 'service', service_auth: 'private_key_jwt', jwks: JSON.stringify({ keys: [{ ...jwk, alg: 'ES256', use: 'sig', kid: 'k1' }] }) });
    body.append('scopes', 'workflows:read');
    body.append('scopes', 'runs:read');
    const svc = await b.fetch(url(`/dashboard/orgs/${orgA}/oauth-apps/new`), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
    const html = await svc.text();
    expect(svc.status, /class="error"[^>]*>([^<]*)</.exec(html)?.[1]).toBe(201);
    expect(html).not.toContain('id="secret-value"');
    const svcId = /id="client-id"[^>]*>([^<]+)</.exec(html)![1];
    const row = (await env.server.services.clients.get(svcId))!;
    expect(row.metadata.token_endpoint_auth_method).toBe('private_key_jwt');
    expect(row.metadata.grant_types).toContain('client_credentials');
    expect(row.metadata.scope).toBe('workflows:read runs:read');

    const bad = await b.postForm(url(`/dashboard/orgs/${orgA}/oauth-apps/new`), { csrf, name: 'No redirect', kind: 'web', redirect_uris: '' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/<p class="error" id="ru-error">authorization_code needs at least one redirect URI<\/p>/);
    const badJwks = await b.postForm(url(`/dashboard/orgs/${orgA}/oauth-apps/new`), { csrf, name: 'Bad', kind: 'service', service_auth: 'private_key_jwt', jwks: '{nope' });
    expect(badJwks.status).toBe(400);
    expect(await badJwks.text()).toContain('id="jwks-error"');
  });

  it('deleting an app in the dashboard stops its client credentials at once', async () => {
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/oauth-apps/new`);
    const res = await b.postForm(url(`/dashboard/orgs/${orgA}/oauth-apps/new`), { csrf, name: 'Short-lived service', kind: 'service', service_auth: 'client_secret_basic', scopes: 'workflows:read' });
    const html = await res.text();
    const id = /id="client-id"[^>]*>([^<]+)</.exec(html)![1];
    const secret = /id="secret-value"[^>]*>([^<]+)</.exec(html)![1];
    const token = () =>
      fetch(url('/token'), {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=workflows:read',
      });
    expect((await token()).status).toBe(200);
    expect((await b.postForm(url(`/dashboard/orgs/${orgA}/oauth-apps/${id}/delete`), { csrf })).status).toBe(302);
    expect((await token()).status).toBe(401);
  });
});

describe('authorized apps', () => {
  it('a user cannot revoke another user’s grant by posting its id', async () => {
    const { ds } = env.server.services;
    const app = await env.server.services.clients.create(CLI_ACTOR, { orgId: orgA, name: 'grant app', redirectUris: ['https://g.example.test/cb'] });
    await ds.getRepository(OAuthConsentEntity).insert({ grantId: 'grant-of-the-owner', userId: owner.id, clientId: app.client.client_id, orgId: orgA, scope: 'openid', revokedAt: null });
    const b = await signIn(member.email);
    const page = await (await b.get(url(`/dashboard/orgs/${orgA}/authorized-apps`))).text();
    expect(page).not.toContain('grant app');
    expect(page).toContain('You have not authorized any app');
    const csrf = parseForms(page).find((f) => f.fields.csrf)!.fields.csrf;
    const res = await b.postForm(url(`/dashboard/orgs/${orgA}/authorized-apps/grant-of-the-owner/revoke`), { csrf });
    expect(res.status).toBe(404);
    expect((await ds.getRepository(OAuthConsentEntity).findOneBy({ grantId: 'grant-of-the-owner' }))?.revokedAt).toBeNull();
  });
});

describe('members', () => {
  it('the last owner cannot be demoted or removed; the message is shown in words', async () => {
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/members`);
    const demote = await b.postForm(url(`/dashboard/orgs/${orgA}/members/${owner.id}/role`), { csrf, role: 'member' });
    expect(demote.status).toBe(409);
    expect(await demote.text()).toContain('The last owner cannot be demoted');
    const remove = await b.postForm(url(`/dashboard/orgs/${orgA}/members/${owner.id}/remove`), { csrf });
    expect(remove.status).toBe(409);
    expect((await env.server.services.accounts.membership(orgA, owner.id))?.role).toBe('owner');
  });

  it('an invitation link sets the password, signs in, and works once', async () => {
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/members`);
    const res = await b.postForm(url(`/dashboard/orgs/${orgA}/members/invite`), { csrf, email: 'Invited-HTTP@example.test', role: 'admin' });
    expect(res.status).toBe(201);
    const link = /id="secret-value"[^>]*>([^<]+)</.exec(await res.text())![1];
    expect(link).toMatch(new RegExp(`^${env.url}/dashboard/invitations/[\\w-]{43}$`));

    const invitee = new Browser();
    const page = await invitee.get(link);
    expect(page.status).toBe(200);
    const form = parseForms(await page.text())[0];
    const mismatch = await invitee.postForm(url(form.action), { csrf: form.fields.csrf, password: 'a-new-password', password_confirm: 'other' });
    expect(mismatch.status).toBe(400);
    const ok = await invitee.postForm(url(form.action), { csrf: form.fields.csrf, password: 'a-new-password', password_confirm: 'a-new-password' });
    expect(ok.status).toBe(302);
    expect(ok.headers.get('location')).toBe(`/dashboard/orgs/${orgA}/api-keys`);
    expect((await invitee.get(url(ok.headers.get('location')!))).status).toBe(200);
    expect(await env.server.services.accounts.authenticate('invited-http@example.test', 'a-new-password')).not.toBeNull();
    const m = await env.server.services.accounts.membership(orgA, (await env.server.services.accounts.findUserByEmail('invited-http@example.test'))!.id);
    expect(m?.role).toBe('admin');
    // Once only: the link is gone, and a replayed form is refused (its pre-session cookie ended with the sign-in).
    expect((await new Browser().get(link)).status).toBe(410);
    const replay = await invitee.postForm(url(form.action), { csrf: form.fields.csrf, password: 'x-new-password', password_confirm: 'x-new-password' });
    expect([403, 410]).toContain(replay.status);
    expect(await env.server.services.accounts.authenticate('invited-http@example.test', 'x-new-password')).toBeNull();
  });

  it("an invitation form posted from another site cannot sign a victim's browser into the inviter's account (login CSRF)", async () => {
    // The attacker invites an address of their own, opens the link in their browser and keeps the form.
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/members`);
    const res = await b.postForm(url(`/dashboard/orgs/${orgA}/members/invite`), { csrf, email: 'attacker-csrf@example.test', role: 'member' });
    const link = /id="secret-value"[^>]*>([^<]+)</.exec(await res.text())![1];
    const attacker = new Browser();
    const form = parseForms(await (await attacker.get(link)).text())[0];
    const fields = { csrf: form.fields.csrf, password: 'attacker-password', password_confirm: 'attacker-password' };

    // The victim's browser posts it (a cross-site form): no pre-session cookie of its own.
    const victim = new Browser();
    const forged = await victim.postForm(url(form.action), fields);
    expect(forged.status).toBe(403);
    expect(forged.headers.get('set-cookie') ?? '').not.toContain('flowgate_dash=');
    // Nor with a pre-session cookie of the victim's own (the value is bound to the attacker's).
    await victim.get(url('/dashboard/login'));
    expect((await victim.postForm(url(form.action), fields)).status).toBe(403);
    expect(await env.server.services.accounts.findUserByEmail('attacker-csrf@example.test')).toBeNull();
    // The attacker's own browser still can (the link was not spent by the refused posts).
    expect((await attacker.postForm(url(form.action), fields)).status).toBe(302);
  });
});

describe('the JSON API with a dashboard session', () => {
  it('needs the session’s CSRF token in X-CSRF-Token; the cookie alone is not a credential', async () => {
    const b = await signIn(owner.email);
    const csrf = await csrfOf(b, `/dashboard/orgs/${orgA}/api-keys`);
    const bare = await b.fetch(url('/api/v1/auth/api-keys'));
    expect(bare.status).toBe(401);
    const withToken = await b.fetch(url('/api/v1/auth/api-keys'), { headers: { 'x-csrf-token': csrf, 'x-org-id': orgA } });
    expect(withToken.status).toBe(200);
    const body = (await withToken.json()) as { data: { org_id: string }[] };
    expect(body.data.every((k) => k.org_id === orgA)).toBe(true);
  });
});
