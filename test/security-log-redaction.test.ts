import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { Browser, parseForms } from './support/oauth.js';

// What grants access never reaches the request log: invitation links, API keys in the query string
// however their parameter name is spelled, codes and state.
let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

const flush = () => new Promise((r) => setTimeout(r, 100));

describe('request log redaction', () => {
  it('never logs an invitation token, in the link or in the accepting form post', async () => {
    const { accounts } = env.server.services;
    const org = await accounts.createOrganization(CLI_ACTOR, { name: 'Invites' });
    const { token } = await env.server.services.invitations.invite(CLI_ACTOR, org.id, { email: `new-${randomBytes(4).toString('hex')}@example.test`, role: 'member' });
    const browser = new Browser();
    const page = await browser.get(`${env.url}/dashboard/invitations/${token}`);
    expect(page.status).toBe(200);
    const form = parseForms(await page.text()).find((f) => 'password' in f.fields)!;
    const accepted = await browser.postForm(new URL(form.action, env.url), { ...form.fields, password: 'a long enough password', password_confirm: 'a long enough password' });
    expect(accepted.status).toBe(302);
    // Spelled differently, the router still serves it: the log must not show it either.
    await fetch(`${env.url}/Dashboard/%69nvitations/${token}x`);
    await flush();
    const lines = env.logs.lines.filter((l) => l.includes('"msg":"request"') && /nvitations/i.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(env.logs.text).not.toContain(token);
  });

  it.each(['api%2Dkey', 'api-k%65y', 'API-KEY', 'api_key', '%61pi-key'])('never logs an API key sent as ?%s=', async (name) => {
    const key = `sk-${randomBytes(20).toString('base64url')}`;
    const res = await fetch(`${env.url}/api/v1/auth/whoami?${name}=${key}`);
    expect(res.status).toBeLessThan(500);
    await flush();
    expect(env.logs.lines.some((l) => l.includes('/api/v1/auth/whoami'))).toBe(true);
    expect(env.logs.text).not.toContain(key);
  });

  it('never logs codes, state or client secrets in query strings', async () => {
    const values = ['code', 'st%61te', 'client_secret', 'refresh_token', 'subject_token'].map((name) => [name, randomBytes(16).toString('hex')] as const);
    await fetch(`${env.url}/auth?client_id=nope&${values.map(([n, v]) => `${n}=${v}`).join('&')}`);
    await flush();
    for (const [, v] of values) expect(env.logs.text).not.toContain(v);
  });
});
