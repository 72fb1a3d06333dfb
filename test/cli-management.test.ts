/**
 * CLI parity with the management API: clients update|delete|rotate-secret, members list|update|remove,
 * invitations create|list|revoke, teams list|update|delete, orgs update; each prints one JSON object
 * with --json, and refusals name the CLI's flags (the services name fields).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { runCliJson } from './support/cli.js';
import { request } from './support/api.js';
import { CLI_ACTOR } from '../src/audit/service.js';

let env: TestEnv;
let orgId: string;
const cli = (...args: string[]) => runCliJson(env, ...args);

beforeAll(async () => {
  env = await startTestServer();
  orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'CLI mgmt', plan: 'pro' })).id;
});
afterAll(async () => env?.close());

describe('management commands', () => {
  it('clients create, update, rotate-secret (with grace) and delete', async () => {
    const created = await cli('clients', 'create', '--org', orgId, '--name', 'svc', '--grant-type', 'client_credentials', '--scope', 'workflows:read');
    expect(created.code).toBe(0);
    const id = created.out.client_id;
    const updated = await cli('clients', 'update', '--id', id, '--name', 'svc 2', '--introspect');
    expect(updated.out).toMatchObject({ id, client_name: 'svc 2', introspection: true });
    const off = await cli('clients', 'update', '--id', id, '--no-introspect');
    expect(off.out.introspection).toBe(false);
    const bad = await cli('clients', 'update', '--id', id, '--redirect-uri', 'not a url');
    expect(bad.code).toBe(1);
    expect(bad.out.error).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(bad.out.error.message).toMatch(/^--redirect-uri: /);
    const rotated = await cli('clients', 'rotate-secret', '--id', id, '--grace-seconds', '600');
    expect(rotated.out).toMatchObject({ id, client_secret: expect.any(String), previous_secret_expires_at: expect.any(String) });
    const token = (secret: string) => request(env.url).post('/token').auth(id, secret).type('form').send({ grant_type: 'client_credentials', scope: 'workflows:read' });
    await token(created.out.client_secret).expect(200);
    await token(rotated.out.client_secret).expect(200);
    expect((await cli('clients', 'delete', '--id', id)).out).toEqual({ id, deleted: true });
    await token(rotated.out.client_secret).expect(401);
    expect((await cli('clients', 'delete', '--id', id)).out.error.code).toBe('NOT_FOUND');
  });

  it('teams, members and invitations', async () => {
    const team = (await cli('teams', 'create', '--org', orgId, '--name', 'Blue')).out;
    const user = (await cli('users', 'create', '--org', orgId, '--email', 'cli-member@example.test', '--password', 'a long enough password')).out;
    const moved = await cli('members', 'update', '--org', orgId, '--user', user.id, '--role', 'admin', '--team', team.id);
    expect(moved.out).toMatchObject({ id: user.id, role: 'admin', team_id: team.id });
    const listed = await cli('members', 'list', '--org', orgId, '--team', team.id);
    expect(listed.out.items.map((m: { email: string }) => m.email)).toEqual(['cli-member@example.test']);
    expect((await cli('members', 'update', '--org', orgId, '--user', user.id, '--role', 'king')).code).toBe(2);

    const teams = await cli('teams', 'list', '--org', orgId);
    expect(teams.out.items).toEqual([expect.objectContaining({ id: team.id, name: 'Blue', member_count: 1 })]);
    expect((await cli('teams', 'update', '--org', orgId, '--id', team.id, '--name', 'Green')).out).toEqual({ id: team.id, name: 'Green' });
    const key = await cli('api-keys', 'create', '--org', orgId, '--name', 'team key', '--preset', 'read_only', '--team', team.id);
    const refused = await cli('teams', 'delete', '--org', orgId, '--id', team.id);
    expect(refused.out.error.code).toBe('TEAM_HAS_KEYS');
    const deleted = await cli('teams', 'delete', '--org', orgId, '--id', team.id, '--revoke-keys');
    expect(deleted.out).toEqual({ id: team.id, deleted: true, revoked_api_keys: [key.out.id] });
    await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', key.out.key).expect(401);

    const inv = await cli('invitations', 'create', '--org', orgId, '--email', 'invitee@example.test', '--role', 'member');
    expect(inv.out).toMatchObject({ email: 'invitee@example.test', url: expect.stringContaining('/dashboard/invitations/') });
    expect((await cli('invitations', 'list', '--org', orgId)).out.items.map((i: { id: string }) => i.id)).toEqual([inv.out.id]);
    expect((await cli('invitations', 'revoke', '--org', orgId, '--id', inv.out.id)).out).toEqual({ id: inv.out.id, deleted: true });
    expect((await cli('invitations', 'list', '--org', orgId)).out.items).toEqual([]);
    const badEmail = await cli('invitations', 'create', '--org', orgId, '--email', 'nobody');
    expect(badEmail.out.error.message).toMatch(/^--email: /);

    expect((await cli('members', 'remove', '--org', orgId, '--user', user.id)).out).toEqual({ id: user.id, deleted: true });
    expect(await env.server.services.accounts.membership(orgId, user.id)).toBeNull();
  });

  it('orgs update', async () => {
    const r = await cli('orgs', 'update', '--org', orgId, '--name', 'Renamed', '--allow-query-api-key', 'false');
    expect(r.out).toMatchObject({ id: orgId, name: 'Renamed', allow_query_api_key: false });
    expect((await cli('orgs', 'update', '--org', orgId, '--allow-query-api-key', 'maybe')).code).toBe(2);
    expect((await env.server.services.accounts.getOrganization(orgId)).settings.allowQueryApiKey).toBe(false);
  });
});
