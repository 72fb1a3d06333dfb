import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { authorize, Browser, createClient, oidc, parseForms, type TestUser } from './support/oauth.js';
import { runCliJson } from './support/cli.js';

// OIDC Core §5.1: email_verified is true only when the address owner proved control of the address.
// Flowgate sends no mail, so nothing proves it unless an operator marks it verified.
let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

/** A tenant admin invites an address nobody has claimed and accepts the link themselves. */
async function claimThroughInvitation(): Promise<TestUser> {
  const org = await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'Claimer' });
  const email = `ceo-${randomBytes(4).toString('hex')}@bank.example`;
  const { token } = await env.server.services.invitations.invite(CLI_ACTOR, org.id, { email, role: 'member' });
  const browser = new Browser();
  const page = await browser.get(`${env.url}/dashboard/invitations/${token}`);
  const form = parseForms(await page.text()).find((f) => 'password' in f.fields)!;
  const password = 'attacker chosen password';
  expect((await browser.postForm(new URL(form.action, env.url), { ...form.fields, password, password_confirm: password })).status).toBe(302);
  return { id: '', email, password, orgIds: [org.id] };
}

async function claimsFor(user: TestUser) {
  const client = await createClient(env, { orgId: user.orgIds[0] });
  const r = await authorize(env, { client, user, scope: 'openid email' });
  const idToken = r.tokens!.claims()!;
  const info = await oidc.fetchUserInfo(r.config, r.tokens!.access_token, idToken.sub);
  return { idToken, info };
}

describe('email_verified', () => {
  it('is false in the ID token and userinfo for an address claimed through an invitation', async () => {
    const user = await claimThroughInvitation();
    const { idToken, info } = await claimsFor(user);
    // Code flow: the scope's claims are served at userinfo (the ID token carries them only when no
    // access token can fetch them); whatever the ID token carries must not claim a verified address.
    expect(idToken.email_verified).not.toBe(true);
    expect(info).toMatchObject({ email: user.email, email_verified: false });
  });

  it('is true once an operator marks the address verified (CLI), and the change is audited', async () => {
    const user = await claimThroughInvitation();
    const r = await runCliJson(env, 'users', 'verify-email', '--email', user.email.toUpperCase());
    expect(r.code).toBe(0);
    expect(r.out).toMatchObject({ email: user.email, email_verified: true });
    const { idToken, info } = await claimsFor(user);
    expect(info).toMatchObject({ email: user.email, email_verified: true });
    const rows = await env.server.services.ds.query(`SELECT action FROM audit_events WHERE target_id = $1 AND action = 'user.email_verified'`, [idToken.sub]);
    expect(rows).toHaveLength(1);
  });

  it('the CLI refuses an unknown address', async () => {
    const r = await runCliJson(env, 'users', 'verify-email', '--email', 'nobody@example.test');
    expect(r.code).not.toBe(0);
    expect(r.out).toMatchObject({ success: false, error: { code: 'NOT_FOUND' } });
  });
});
