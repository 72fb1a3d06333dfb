import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { Browser, createClient, createUser, openLoginPage, parseForms, type TestClient, type TestUser } from './support/oauth.js';

/**
 * Brute-force protection on both sign-in forms (OAuth login and dashboard): failed sign-ins per
 * account (short, so an attacker cannot lock a victim out for long) and per IP (stricter over a longer
 * window).
 */
// The account window is short enough to wait out, and long enough for four scrypt checks on a loaded machine.
const LIMITS = JSON.stringify({ loginAccount: { limit: 3, window: '6s' }, loginIp: { limit: 6, window: '5m' } });

let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer({ RATE_LIMITS: LIMITS });
});
afterAll(async () => env?.close());

async function oauthLoginPage(client: TestClient): Promise<{ browser: Browser; action: URL; csrf: string }> {
  const { browser, form } = await openLoginPage(env, client);
  return { browser, action: new URL(form.action, env.url), csrf: form.fields.csrf };
}

async function attempt(p: { browser: Browser; action: URL; csrf: string }, user: TestUser, password: string) {
  const res = await p.browser.postForm(p.action, { csrf: p.csrf, email: user.email, password });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), html: await res.text() };
}

describe('sign-in brute-force protection', () => {
  it('OAuth login: an account is paused after repeated failures (briefly), and the IP after more', async () => {
    const client = await createClient(env);
    const victim = await createUser(env);
    const other = await createUser(env);
    const page = await oauthLoginPage(client);
    for (let i = 0; i < 3; i++) expect((await attempt(page, victim, 'wrong password!')).status).toBe(401);
    // The fourth try within the window is refused even with the right password, and says when to retry.
    const paused = await attempt(page, victim, victim.password);
    expect(paused.status).toBe(429);
    expect(Number(paused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(paused.html).toContain('Too many sign-in attempts');
    // Another account from the same address is not affected by the victim's limit...
    expect((await attempt(page, other, 'wrong password!')).status).toBe(401);
    // ...and the victim is back after the short account window.
    await new Promise((r) => setTimeout(r, 6100));
    const fresh = await oauthLoginPage(client);
    const ok = await attempt(fresh, victim, victim.password);
    expect(ok.status).toBe(303);
    // The success did not count; two more failures make six from this address in 5 minutes: everyone
    // from it waits.
    for (let i = 0; i < 2; i++) expect((await attempt(await oauthLoginPage(client), other, 'wrong password!')).status).toBe(401);
    const blocked = await attempt(await oauthLoginPage(client), other, other.password);
    expect(blocked.status).toBe(429);
  });
});

describe('dashboard sign-in', () => {
  let dash: TestEnv;
  beforeAll(async () => {
    dash = await startTestServer({ RATE_LIMITS: LIMITS });
  });
  afterAll(async () => dash?.close());

  it('applies the same per-account limit', async () => {
    const user = await createUser(dash);
    const browser = new Browser();
    const post = async (password: string) => {
      const page = await browser.get(new URL('/dashboard/login', dash.url));
      const form = parseForms(await page.text()).find((f) => 'password' in f.fields)!;
      const res = await browser.postForm(new URL(form.action, dash.url), { csrf: form.fields.csrf, email: user.email, password });
      return { status: res.status, html: await res.text() };
    };
    for (let i = 0; i < 3; i++) expect((await post('wrong password!')).status).toBe(401);
    const paused = await post(user.password);
    expect(paused.status).toBe(429);
    expect(paused.html).toContain('Too many sign-in attempts');
  });

  it('an invitation link for an existing account cannot be used to guess its password without limit', async () => {
    // Its own server: the per-IP budget of the one above is spent by the tests before this one.
    const inv = await startTestServer({ RATE_LIMITS: JSON.stringify({ loginAccount: { limit: 3, window: '1m' }, loginIp: { limit: 100, window: '5m' } }) });
    try {
      await guessThroughInvitation(inv);
    } finally {
      await inv.close();
    }
  });
});

async function guessThroughInvitation(dash: TestEnv) {
  const victim = await createUser(dash);
  const org = await dash.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'Inviting org' });
  const { token } = await dash.server.services.invitations.invite(CLI_ACTOR, org.id, { email: victim.email, role: 'member' });
  const browser = new Browser();
  const guess = async (password: string) => {
    const page = await browser.get(new URL(`/dashboard/invitations/${token}`, dash.url));
    const form = parseForms(await page.text()).find((f) => 'password' in f.fields)!;
    const res = await browser.postForm(new URL(form.action, dash.url), { csrf: form.fields.csrf, password, password_confirm: password });
    return res.status;
  };
  for (let i = 0; i < 3; i++) expect(await guess('wrong password!')).not.toBe(429);
  // The per-account budget is the sign-in forms' own: the fourth guess waits, right password or not.
  expect(await guess(victim.password)).toBe(429);
}
