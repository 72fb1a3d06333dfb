/// <reference lib="dom" />
// (page.evaluate callbacks run in the browser.)
/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core), clicked as a person
 * would: sign in, create a key with a preset, copy it, call the example workflow service with it,
 * watch "last used", roll, delete, the member's view, the cap, an OAuth app through consent and its
 * revocation, an invitation link, and the audit log. Every page is checked with axe (no serious or
 * critical violation) and screenshotted at desktop and mobile widths into docs/screenshots/.
 * The steps share one server and one browser, and run in order.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestServer, type TestEnv } from './support/server.js';
import { createClient, createOrg, oidc, TEST_PASSWORD } from './support/oauth.js';
import { launchChromium, newContext, screenshots, seriousViolations, tabTo } from './support/browser.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { buildWorkflowService } from '../examples/workflow-service/app.js';

let env: TestEnv;
let browser: Browser;
let owner: BrowserContext;
let page: Page;
let orgId: string;
let svc: http.Server;
let svcUrl: string;
const ownerEmail = 'ada@example.test';
const state: { key?: string; keyName?: string; rolled?: string; memberLink?: string; clientId?: string; clientSecret?: string; refreshToken?: string } = {};

beforeAll(async () => {
  browser = await launchChromium(); // throws with a clear message when Chromium is missing
  // Every test here signs in afresh, as the same few users, from 127.0.0.1: lift the sign-in limits (tested in ratelimit-login).
  env = await startTestServer({ RATE_LIMITS: JSON.stringify({ loginIp: { limit: 10_000, window: '5m' }, loginAccount: { limit: 10_000, window: '1m' }, authFailures: { limit: 10_000, window: '1m' } }) });
  orgId = await createOrg(env);
  await env.server.services.accounts.updateOrganization(CLI_ACTOR, orgId, { name: 'Acme Automations' });
  await env.server.services.accounts.createUser(CLI_ACTOR, { email: ownerEmail, password: TEST_PASSWORD, orgId, role: 'owner' });
  await env.server.services.accounts.createTeam(CLI_ACTOR, { orgId, name: 'Platform' });
  const rs = await createClient(env, { orgId, name: 'Workflow service', grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  const { app } = buildWorkflowService({ issuer: env.url, clientId: rs.clientId, clientSecret: rs.clientSecret!, cacheTtlMs: 200 });
  svc = http.createServer(app.callback());
  await new Promise<void>((r) => svc.listen(0, '127.0.0.1', () => r()));
  svcUrl = `http://127.0.0.1:${(svc.address() as AddressInfo).port}`;
  owner = await newContext(browser, env.url);
  page = await owner.newPage();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  svc?.close();
  await env?.close();
});

/** axe finds nothing serious or critical, and the page is screenshotted at both widths. */
async function check(p: Page, name: string) {
  expect(await seriousViolations(p), name).toEqual([]);
  await screenshots(p, name);
}

const callService = (key: string) => fetch(`${svcUrl}/api/v1/workflows`, { headers: { 'x-api-key': key } });

async function eventually(fn: () => Promise<boolean>, ms: number): Promise<number> {
  const start = Date.now();
  while (!(await fn())) {
    if (Date.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

async function signIn(p: Page, email: string, password = TEST_PASSWORD) {
  await p.goto('/dashboard');
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

describe('the dashboard in a browser', () => {
  it('signs in through the shared sign-in page and shows the empty API Keys page', async () => {
    await page.goto('/dashboard');
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    await check(page, 'sign-in');
    await signIn(page, ownerEmail);
    await page.waitForURL(`**/dashboard/orgs/${orgId}/api-keys`);
    const nav = page.getByRole('navigation', { name: 'Dashboard' });
    for (const link of ['API Keys', 'OAuth Apps', 'Authorized Apps', 'Members', 'Audit Log', 'Settings', 'Webhooks']) {
      expect(await nav.getByRole('link', { name: link, exact: true }).count(), link).toBe(1);
    }
    expect(await page.getByText('No API keys yet').isVisible()).toBe(true);
    expect(await page.getByText('0 of 5 keys').isVisible()).toBe(true);
    await check(page, 'api-keys-empty');
  });

  it('creates a key with the “Read & write” preset, copies it from the page and calls the example service', async () => {
    await page.getByRole('link', { name: '+ Create new API key' }).click();
    await check(page, 'api-key-create');
    await page.getByLabel('Name').fill('Production API');
    await page.getByLabel('Read & write').check();
    await page.getByLabel('Expiration').selectOption('90');
    await page.getByLabel(/^Team/).selectOption({ label: 'Platform' });
    await page.getByRole('button', { name: 'Generate Key' }).click();
    expect(await page.getByText('It will not be shown again').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe((await page.locator('#secret-value').textContent())!.trim());
    expect(copied).toMatch(/^sk-[0-9A-Za-z]{38}$/);
    state.key = copied;
    await check(page, 'api-key-created');

    const res = await callService(copied);
    expect(res.status).toBe(200);
    // Read & write has no api_keys scope: the example service's scope check still applies.
    const run = await fetch(`${svcUrl}/api/v1/workflows`, { method: 'POST', headers: { 'x-api-key': copied, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'from the dashboard test' }) });
    expect(run.status).toBe(201);
  });

  it('shows the key in the table and “last used” changes from never', async () => {
    await page.getByRole('link', { name: 'Done: back to API keys' }).click();
    const row = page.locator('tr', { hasText: 'Production API' });
    expect(await row.locator('code.masked').textContent()).toBe(`${state.key!.slice(0, 7)}…${state.key!.slice(-4)}`);
    expect(await row.getByText('Platform').isVisible()).toBe(true);
    expect(await page.getByText('1 of 5 keys').isVisible()).toBe(true);
    await eventually(async () => {
      await page.reload();
      return (await page.locator('tr', { hasText: 'Production API' }).locator('td.lastused').textContent())!.trim() !== 'never';
    }, 5000);
    const lastUsed = page.locator('tr', { hasText: 'Production API' }).locator('td.lastused time');
    expect(await lastUsed.getAttribute('title')).toMatch(/UTC$/);
    await check(page, 'api-keys');
  });

  it('rolls the key: with 1 hour the old secret keeps working; with “Now” it stops at once', async () => {
    await page.getByRole('link', { name: 'Roll Production API' }).click();
    await check(page, 'api-key-roll');
    await page.getByLabel('1 hour').check();
    await page.getByRole('button', { name: 'Roll key' }).click();
    const first = (await page.locator('#secret-value').textContent())!.trim();
    expect(first).not.toBe(state.key);
    expect((await callService(first)).status).toBe(200);
    expect((await callService(state.key!)).status).toBe(200); // within its hour of grace

    await page.getByRole('link', { name: 'Done: back to API keys' }).click();
    await page.getByRole('link', { name: 'Roll Production API' }).click();
    await page.getByLabel(/^Now/).check();
    await page.getByRole('button', { name: 'Roll key' }).click();
    expect(await page.getByText('The old secret stopped working now.').isVisible()).toBe(true);
    const second = (await page.locator('#secret-value').textContent())!.trim();
    const waited = await eventually(async () => (await callService(first)).status === 401, 1000);
    expect(waited).toBeLessThan(1000);
    expect((await callService(second)).status).toBe(200);
    state.rolled = second;
  });

  it('deletes the key after a confirmation; it is refused within a second', async () => {
    await page.getByRole('link', { name: 'Done: back to API keys' }).click();
    await page.getByRole('link', { name: 'Delete Production API' }).click();
    expect(await page.getByText('Deleted keys cannot be recovered.').isVisible()).toBe(true);
    await check(page, 'api-key-delete');
    await page.getByRole('button', { name: 'Delete key' }).click();
    expect(await page.getByText('was deleted').isVisible()).toBe(true);
    const waited = await eventually(async () => (await callService(state.rolled!)).status === 401, 1000);
    expect(waited).toBeLessThan(1000);
    const body = (await (await callService(state.rolled!)).json()) as { error: { code: string } };
    expect(body.error.code).toBe('INVALID_API_KEY');
  });

  it('completes the create-key form with the keyboard alone', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/api-keys`);
    await tabTo(page, (el) => el.tag === 'a' && el.text === '+ Create new API key');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/api-keys/new');
    await tabTo(page, (el) => el.id === 'name');
    await page.keyboard.type('Keyboard key');
    await tabTo(page, (el) => el.name === 'permissions');
    await page.keyboard.press('ArrowDown'); // Read only -> Read & write
    expect(await page.getByLabel('Read & write').isChecked()).toBe(true);
    await tabTo(page, (el) => el.tag === 'button' && el.text === 'Generate Key');
    await page.keyboard.press('Enter');
    await page.locator('#secret-value').waitFor();
    expect(await page.getByRole('heading', { name: /Keyboard key/ }).isVisible()).toBe(true);
    await tabTo(page, (el) => el.tag === 'button' && el.text === 'Copy');
    await page.keyboard.press('Enter');
    await page.getByText('Copied to the clipboard.').waitFor();
  });

  it('invites a member, who signs in through the link and sees others’ keys masked, without Delete', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/members`);
    await check(page, 'members');
    await page.getByLabel('Email', { exact: true }).fill('grace@example.test');
    await page.getByLabel('Role', { exact: true }).selectOption('member');
    await page.getByRole('button', { name: 'Create invitation link' }).click();
    state.memberLink = (await page.locator('#secret-value').textContent())!.trim();
    await check(page, 'member-invited');

    const memberCtx = await newContext(browser, env.url);
    const m = await memberCtx.newPage();
    await m.goto(state.memberLink);
    await check(m, 'invitation-accept');
    await m.getByLabel(/^Choose a password/).fill('grace-password-1');
    await m.getByLabel('Repeat the password').fill('grace-password-1');
    await m.getByRole('button', { name: 'Join and sign in' }).click();
    await m.waitForURL(`**/dashboard/orgs/${orgId}/api-keys`);
    const row = m.locator('tr', { hasText: 'Keyboard key' });
    expect(await row.locator('code.masked').textContent()).toBe('sk-****…****');
    expect(await row.getByRole('link', { name: /Delete/ }).count()).toBe(0);
    expect(await row.getByText("Another member's key").isVisible()).toBe(true);
    expect(await m.getByRole('link', { name: 'OAuth Apps' }).count()).toBe(0);
    await check(m, 'api-keys-member');
    // Editing the URL does not open an admin page.
    const res = await m.goto(`/dashboard/orgs/${orgId}/audit-log`);
    expect(res!.status()).toBe(403);
    expect(await m.getByText('Only owners and admins').isVisible()).toBe(true);
    // The link worked once.
    const again = await m.goto(state.memberLink);
    expect(again!.status()).toBe(410);
    await memberCtx.close();

    // The invited member can also sign in with the password chosen through the link.
    const fresh = await newContext(browser, env.url);
    const f = await fresh.newPage();
    await signIn(f, 'grace@example.test', 'grace-password-1');
    await f.waitForURL(`**/dashboard/orgs/${orgId}/api-keys`);
    await fresh.close();
  });

  it('at the plan’s cap the create button is disabled and says why; a create past it shows KEY_LIMIT_REACHED’s message', async () => {
    const { apiKeys } = env.server.services;
    for (let i = (await apiKeys.list({ actor: CLI_ACTOR }, orgId)).length; i < 5; i++) await apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: `Filler ${i}`, preset: 'read_only' });
    await page.goto(`/dashboard/orgs/${orgId}/api-keys`);
    expect(await page.getByText('5 of 5 keys').isVisible()).toBe(true);
    expect(await page.getByRole('button', { name: '+ Create new API key' }).isDisabled()).toBe(true);
    expect(await page.getByText('allows 5 active keys and all are in use').isVisible()).toBe(true);
    await check(page, 'api-keys-cap');
    await page.goto(`/dashboard/orgs/${orgId}/api-keys/new`);
    await page.getByLabel('Name').fill('One too many');
    await page.getByRole('button', { name: 'Generate Key' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('API key limit reached: the free plan allows 5 active keys');
  });

  it('registers an OAuth app, shows the Client ID and the secret once, and completes a consent flow with it', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/oauth-apps`);
    expect(await page.getByText('No OAuth apps yet').isVisible()).toBe(false); // the resource server exists
    await page.getByRole('link', { name: 'Register app' }).click();
    await check(page, 'oauth-app-register');
    await page.getByLabel('Name').fill('Zapier-like Connector');
    await page.getByLabel('Web app').check();
    await page.getByLabel(/^Redirect URIs/).fill('https://connector.example.test/callback');
    await page.getByRole('button', { name: 'Register app' }).click();
    state.clientId = (await page.locator('#client-id').textContent())!.trim();
    state.clientSecret = (await page.locator('#secret-value').textContent())!.trim();
    expect(state.clientId).toMatch(/^fgc_/);
    expect(await page.getByText('It will not be shown again').isVisible()).toBe(true);
    await check(page, 'oauth-app-registered');
    await page.getByRole('link', { name: 'Done: back to OAuth apps' }).click();
    await check(page, 'oauth-apps');

    const config = await oidc.discovery(new URL(env.url), state.clientId, { client_secret: state.clientSecret }, oidc.ClientSecretBasic(state.clientSecret), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const st = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'https://connector.example.test/callback',
      scope: 'openid offline_access workflows:read',
      resource: env.config.apiAudience,
      prompt: 'consent',
      state: st,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    let callback: string | undefined;
    await owner.route('https://connector.example.test/**', async (route) => {
      callback = route.request().url();
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'connected' });
    });
    await page.goto(url.href);
    await page.getByLabel('Email').fill(ownerEmail);
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Approve' }).waitFor();
    await check(page, 'consent');
    await page.getByRole('button', { name: 'Approve' }).click();
    await eventually(async () => callback !== undefined, 5000);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback!), { pkceCodeVerifier: verifier, expectedState: st }, { resource: env.config.apiAudience });
    expect(tokens.refresh_token).toBeTruthy();
    state.refreshToken = tokens.refresh_token;
    // The refresh token works before the revocation.
    const refreshed = await oidc.refreshTokenGrant(config, state.refreshToken!, { resource: env.config.apiAudience });
    state.refreshToken = refreshed.refresh_token ?? state.refreshToken;
  });

  it('revokes the app under Authorized Apps; its refresh token is refused', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/authorized-apps`);
    const row = page.locator('tr', { hasText: 'Zapier-like Connector' });
    expect(await row.getByText('workflows:read').isVisible()).toBe(true);
    expect(await row.getByText('Acme Automations').isVisible()).toBe(true);
    await check(page, 'authorized-apps');
    await row.getByRole('button', { name: 'Revoke access of Zapier-like Connector' }).click();
    expect(await page.getByText('Access revoked').isVisible()).toBe(true);
    expect(await page.getByText('You have not authorized any app').isVisible()).toBe(true);
    const res = await fetch(`${env.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${state.clientId}:${state.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: state.refreshToken! }).toString(),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('rotates the app’s secret (shown once) and edits the app', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/oauth-apps`);
    await page.getByRole('link', { name: 'Rotate the secret of Zapier-like Connector' }).click();
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const secret = (await page.locator('#secret-value').textContent())!.trim();
    expect(secret).not.toBe(state.clientSecret);
    await page.goto(`/dashboard/orgs/${orgId}/oauth-apps`);
    await page.getByRole('link', { name: 'Edit Zapier-like Connector' }).click();
    await check(page, 'oauth-app-edit');
    await page.getByLabel('Name').fill('Connector (renamed)');
    await page.getByLabel(/introspection endpoint/).check();
    await page.getByRole('button', { name: 'Save changes' }).click();
    const row = page.locator('tr', { hasText: 'Connector (renamed)' });
    expect(await row.getByText('Allowed').isVisible()).toBe(true);
  });

  it('the audit log shows each of these, filterable by action and paginated', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/audit-log`);
    for (const action of ['api_key.created', 'api_key.rolled', 'api_key.revoked', 'member.invited', 'member.added', 'oauth_client.created', 'consent.granted', 'consent.revoked', 'oauth_client.secret_rotated', 'oauth_client.updated']) {
      expect(await page.locator('td code', { hasText: new RegExp(`^${action.replace('.', '\\.')}$`) }).count(), action).toBeGreaterThan(0);
    }
    expect(await page.locator('tr', { hasText: 'api_key.revoked' }).first().getByText(ownerEmail).isVisible()).toBe(true);
    await check(page, 'audit-log');
    await page.getByLabel('Action').fill('api_key.rolled');
    await page.getByRole('button', { name: 'Filter' }).click();
    expect(await page.locator('tbody tr').count()).toBe(2);
    // More events than one page holds (25): the rest are one click away.
    for (let i = 0; i < 30; i++) await env.server.services.audit.record(CLI_ACTOR, { orgId, action: 'team.created', targetType: 'team', details: { name: `Team ${i}` } });
    await page.getByLabel('Action').fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
    expect(await page.locator('tbody tr').count()).toBe(25);
    await page.getByRole('link', { name: 'Older events' }).click();
    expect(await page.locator('tbody tr').count()).toBeGreaterThan(0);
    expect(await page.getByRole('link', { name: 'Newest events' }).isVisible()).toBe(true);
  });

  it('settings: the api-key query parameter can be switched off, and a query key is then refused', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/settings`);
    expect(await page.getByText('Requests per credential').isVisible()).toBe(true);
    await check(page, 'settings');
    const own = (await env.server.services.apiKeys.list({ actor: CLI_ACTOR }, orgId))[0];
    await env.server.services.apiKeys.revoke({ actor: CLI_ACTOR }, own.id);
    const fresh = await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'query key', preset: 'full_access' });
    const viaQuery = () => fetch(`${env.url}/api/v1/auth/api-keys?api-key=${fresh.key}`);
    expect((await viaQuery()).status).toBe(200);
    await page.getByLabel(/api-key/).uncheck();
    await page.getByRole('button', { name: 'Save settings' }).click();
    expect(await page.getByText('Settings saved.').isVisible()).toBe(true);
    expect(await page.getByLabel(/api-key/).isChecked()).toBe(false);
    await eventually(async () => (await viaQuery()).status !== 200, 2000);
    expect((await fetch(`${env.url}/api/v1/auth/api-keys`, { headers: { 'x-api-key': fresh.key } })).status).toBe(200);
    await page.goto(`/dashboard/orgs/${orgId}/webhooks`);
    expect(await page.getByText('No webhook endpoints yet').isVisible()).toBe(true);
    await check(page, 'webhooks');
  });

  it('a key named <script>alert(1)</script> shows as text and runs nothing', async () => {
    let dialog = false;
    page.on('dialog', (d) => {
      dialog = true;
      void d.dismiss();
    });
    await env.server.services.apiKeys.revoke({ actor: CLI_ACTOR }, (await env.server.services.apiKeys.list({ actor: CLI_ACTOR }, orgId))[0].id);
    await page.goto(`/dashboard/orgs/${orgId}/api-keys/new`);
    await page.getByLabel('Name').fill('<script>alert(1)</script>');
    await page.getByRole('button', { name: 'Generate Key' }).click();
    await page.goto(`/dashboard/orgs/${orgId}/api-keys`);
    expect(await page.getByText('<script>alert(1)</script>', { exact: true }).isVisible()).toBe(true);
    expect(dialog).toBe(false);
  });

  it('sign-out ends the session', async () => {
    await page.goto(`/dashboard/orgs/${orgId}/api-keys`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.goto(`/dashboard/orgs/${orgId}/api-keys`);
    expect(page.url()).toContain('/dashboard/login');
  });
});
