/**
 * The management API (clients, members, invitations, teams, organization): each role (owner, admin,
 * member, restricted key), other organizations' ids (404), bad input (400 in the one shape), the
 * audit entry and its event. Every answer is checked against /openapi.json by the request wrapper.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import type { Services } from '../src/compose/services.js';
import type { Principal } from '../src/auth/principal.js';
import type { Role } from '../src/accounts/entities.js';
import { scopesForRole } from '../src/apikeys/presets.js';
import { OAuthConsentEntity } from '../src/oauth/entities.js';

let env: TestEnv;
let s: Services;
let orgA: string;
let orgB: string;
const users: Record<'owner' | 'admin' | 'member', { id: string; key: string }> = {} as never;
let cliKey: string; // made by the CLI: acts as an admin
let wfKey: { id: string; key: string }; // full_access, restricted to workflow wf_1
let teamKey: { id: string; key: string }; // full_access, restricted to team A1
let bKey: string; // org B admin
let teamA1: string;
let teamA2: string;
const secrets: string[] = [];

const api = () => request(env.url);
const as = (key: string) => ({ 'x-api-key': key });

async function keyFor(orgId: string, input: Record<string, unknown>, principal?: Principal) {
  const actor = principal ? { type: 'user' as const, id: principal.userId! } : CLI_ACTOR;
  const { key, apiKey } = await s.apiKeys.create({ actor, principal }, orgId, { name: 'k', ...input } as never);
  secrets.push(key);
  return { id: apiKey.id, key };
}

async function userWithKey(orgId: string, role: Role, email: string) {
  const { user } = await s.accounts.createUser(CLI_ACTOR, { email, password: 'a long enough password', orgId, role });
  const principal: Principal = { kind: 'session', orgId, userId: user.id, role, scopes: scopesForRole(role) };
  return { id: user.id, key: (await keyFor(orgId, { preset: 'full_access' }, principal)).key };
}

/** The audit entries of a target, newest first, through the API (with the event type they emit). */
async function audited(targetId: string) {
  const r = await api().get('/api/v1/audit-events?limit=200').set(as(cliKey)).expect(200);
  return (r.body.data as { action: string; event_type: string | null; target: { id: string }; actor: { type: string } }[]).filter((e) => e.target.id === targetId);
}

beforeAll(async () => {
  env = await startTestServer();
  s = env.server.services;
  orgA = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Org A', plan: 'enterprise' })).id;
  orgB = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Org B', plan: 'enterprise' })).id;
  users.owner = await userWithKey(orgA, 'owner', 'owner@a.example');
  users.admin = await userWithKey(orgA, 'admin', 'admin@a.example');
  users.member = await userWithKey(orgA, 'member', 'member@a.example');
  cliKey = (await keyFor(orgA, { preset: 'full_access' })).key;
  teamA1 = (await s.accounts.createTeam(CLI_ACTOR, { orgId: orgA, name: 'A1' })).id;
  teamA2 = (await s.accounts.createTeam(CLI_ACTOR, { orgId: orgA, name: 'A2' })).id;
  wfKey = await keyFor(orgA, { preset: 'full_access', workflow_id: 'wf_1' });
  teamKey = await keyFor(orgA, { preset: 'full_access', team_id: teamA1 });
  bKey = (await keyFor(orgB, { preset: 'full_access' })).key;
});

afterAll(async () => {
  if (env) {
    for (const k of secrets) expect(env.logs.text).not.toContain(k);
    await env.close();
  }
});

describe('management scopes', () => {
  it('join full_access for owners and admins; a member never holds them', async () => {
    for (const who of ['owner', 'admin'] as const) {
      const me = await api().get('/api/v1/auth/whoami').set(as(users[who].key)).expect(200);
      expect(me.body.data.scopes).toEqual(expect.arrayContaining(['clients:manage', 'members:manage', 'settings:manage']));
    }
    const member = await api().get('/api/v1/auth/whoami').set(as(users.member.key)).expect(200);
    expect(member.body.data.scopes).not.toContain('members:manage');
    expect(member.body.data.scopes).toContain('api_keys:write');
    const asked = await api().post('/api/v1/auth/api-keys').set(as(users.member.key)).send({ name: 'x', scopes: ['members:manage'] }).expect(403);
    expect(asked.body.error).toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', details: { required_role: 'admin' } });
  });

  it('members, restricted keys and other organizations are refused on every management route', async () => {
    const routes: [string, string][] = [
      ['get', '/api/v1/clients'],
      ['get', '/api/v1/members'],
      ['get', '/api/v1/invitations'],
      ['get', '/api/v1/teams'],
      ['patch', '/api/v1/organization'],
    ];
    for (const [method, path] of routes) {
      const call = () => (api() as any)[method](path);
      const m = await call().set(as(users.member.key)).send(method === 'patch' ? { name: 'x' } : undefined).expect(403);
      expect(m.body.error.code).toBe('INSUFFICIENT_PERMISSIONS');
      for (const k of [wfKey, teamKey]) {
        const r = await call().set(as(k.key)).send(method === 'patch' ? { name: 'x' } : undefined).expect(403);
        expect(r.body.error.code).toBe('RESTRICTED_CREDENTIAL');
      }
      await call().expect(401);
    }
    expect((await s.accounts.getOrganization(orgA)).name).toBe('Org A');
  });
});

describe('OAuth clients', () => {
  let clientId: string;
  let secret: string;

  it('registers under RFC 7591 names, shows the secret once, lists with a cursor', async () => {
    const created = await api()
      .post('/api/v1/clients')
      .set(as(users.admin.key))
      .send({ client_name: 'Automation', kind: 'service', scope: 'workflows:read runs:read' })
      .expect(201);
    expect(created.headers['cache-control']).toBe('no-store');
    expect(created.body.data).toMatchObject({
      client_name: 'Automation',
      kind: 'service',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'workflows:read runs:read',
      introspection: false,
      client_secret_expires_at: 0,
      org_id: orgA,
    });
    clientId = created.body.data.client_id;
    secret = created.body.data.client_secret;
    secrets.push(secret);
    const got = await api().get(`/api/v1/clients/${clientId}`).set(as(users.owner.key)).expect(200);
    expect(got.body.data.client_secret).toBeUndefined();
    expect(JSON.stringify(got.body)).not.toContain(secret);

    const web = await api()
      .post('/api/v1/clients')
      .set(as(cliKey))
      .send({ client_name: 'Web', redirect_uris: ['https://app.example.test/cb'], grant_types: ['authorization_code', 'refresh_token'], introspection: true })
      .expect(201);
    secrets.push(web.body.data.client_secret);
    const page1 = await api().get('/api/v1/clients?limit=1').set(as(users.admin.key)).expect(200);
    expect(page1.body.data.map((c: { client_id: string }) => c.client_id)).toEqual([clientId]);
    const page2 = await api().get(`/api/v1/clients?limit=1&cursor=${page1.body.next_cursor}`).set(as(users.admin.key)).expect(200);
    expect(page2.body.data.map((c: { client_id: string }) => c.client_id)).toEqual([web.body.data.client_id]);
    expect(page2.body.next_cursor).toBeNull();
    const services = await api().get('/api/v1/clients?kind=service').set(as(users.admin.key)).expect(200);
    expect(services.body.data.map((c: { client_id: string }) => c.client_id)).toEqual([clientId]);
  });

  it('answers 400 in the one shape, naming every field at fault', async () => {
    const bad = await api()
      .post('/api/v1/clients')
      .set(as(users.admin.key))
      .send({ client_name: '', redirect_uris: ['not a url'], colour: 'blue' })
      .expect(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    expect(bad.body.error.details.issues.map((i: { path: string }) => i.path).sort()).toEqual(['client_name', 'colour', 'redirect_uris.0']);
    const keyless = await api().post('/api/v1/clients').set(as(users.admin.key)).send({ client_name: 'x', token_endpoint_auth_method: 'private_key_jwt', grant_types: ['client_credentials'] }).expect(400);
    expect(keyless.body.error.details.issues).toEqual([{ path: 'jwks', message: 'private_key_jwt needs jwks or jwks_uri' }]);
    expect(keyless.body.error.message).not.toMatch(/--/);
    const method = await api().patch(`/api/v1/clients/${clientId}`).set(as(users.admin.key)).send({ token_endpoint_auth_method: 'none' }).expect(400);
    expect(method.body.error.details.issues[0].path).toBe('token_endpoint_auth_method');
    await api().post(`/api/v1/clients/${clientId}/rotate-secret`).set(as(users.admin.key)).send({ grace_seconds: -1 }).expect(400);
    await api().get('/api/v1/clients?limit=0').set(as(users.admin.key)).expect(400);
    const cursor = await api().get('/api/v1/clients?cursor=bm90IGEgY3Vyc29y').set(as(users.admin.key)).expect(400);
    expect(cursor.body.error.details.issues[0].path).toBe('cursor');
  });

  it('changes metadata, rotates the secret with a grace period for the old one, and deletes', async () => {
    const token = (sec: string) => request(env.url).post('/token').auth(clientId, sec).type('form').send({ grant_type: 'client_credentials', scope: 'workflows:read' });
    const patched = await api().patch(`/api/v1/clients/${clientId}`).set(as(users.admin.key)).send({ client_name: 'Automation 2', scope: 'workflows:read', introspection: true }).expect(200);
    expect(patched.body.data).toMatchObject({ client_name: 'Automation 2', scope: 'workflows:read', introspection: true });
    await token(secret).expect(200);

    const rotated = await api().post(`/api/v1/clients/${clientId}/rotate-secret`).set(as(users.admin.key)).send({ grace_seconds: 3600 }).expect(200);
    const next = rotated.body.data.client_secret as string;
    secrets.push(next);
    expect(rotated.headers['cache-control']).toBe('no-store');
    expect(new Date(rotated.body.data.previous_secret_expires_at).getTime()).toBeGreaterThan(Date.now() + 3500_000);
    await token(next).expect(200);
    await token(secret).expect(200); // within its grace
    const now = await api().post(`/api/v1/clients/${clientId}/rotate-secret`).set(as(users.admin.key)).send({}).expect(200);
    secrets.push(now.body.data.client_secret);
    expect(now.body.data.previous_secret_expires_at).toBeNull();
    await token(next).expect(401);
    await token(secret).expect(401);
    await token(now.body.data.client_secret).expect(200);

    const actions = (await audited(clientId)).map((e) => [e.action, e.event_type, e.actor.type]);
    expect(actions).toEqual(
      expect.arrayContaining([
        ['oauth_client.created', 'oauth_client.created', 'api_key'],
        ['oauth_client.updated', 'oauth_client.updated', 'api_key'],
        ['oauth_client.secret_rotated', 'oauth_client.secret_rotated', 'api_key'],
      ]),
    );
    await api().delete(`/api/v1/clients/${clientId}`).set(as(users.owner.key)).expect(200);
    await api().get(`/api/v1/clients/${clientId}`).set(as(users.owner.key)).expect(404);
    await token(now.body.data.client_secret).expect(401);
    expect((await audited(clientId)).map((e) => e.event_type)).toContain('oauth_client.deleted');
  });

  it("never reveals or touches another organization's client (404)", async () => {
    const b = await s.clients.create(CLI_ACTOR, { orgId: orgB, name: 'B app', grantTypes: ['client_credentials'] });
    for (const call of [
      api().get(`/api/v1/clients/${b.client.client_id}`),
      api().patch(`/api/v1/clients/${b.client.client_id}`).send({ client_name: 'mine' }),
      api().post(`/api/v1/clients/${b.client.client_id}/rotate-secret`).send({}),
      api().delete(`/api/v1/clients/${b.client.client_id}`),
    ]) {
      const r = await call.set(as(users.owner.key)).expect(404);
      expect(r.body.error.code).toBe('NOT_FOUND');
    }
    expect((await s.clients.get(b.client.client_id))?.name).toBe('B app');
  });
});

describe('members', () => {
  let extra: string;

  it('lists with a cursor and filters; an owner changes role and team; the last owner stays', async () => {
    extra = (await s.accounts.createUser(CLI_ACTOR, { email: 'extra@a.example', password: 'a long enough password', orgId: orgA, role: 'member' })).user.id;
    const all = await api().get('/api/v1/members?limit=2').set(as(users.admin.key)).expect(200);
    expect(all.body.data.map((m: { email: string }) => m.email)).toEqual(['owner@a.example', 'admin@a.example']);
    const rest = await api().get(`/api/v1/members?cursor=${all.body.next_cursor}`).set(as(users.admin.key)).expect(200);
    expect(rest.body.data.map((m: { email: string }) => m.email)).toEqual(['member@a.example', 'extra@a.example']);
    const members = await api().get('/api/v1/members?role=member').set(as(users.admin.key)).expect(200);
    expect(members.body.data).toHaveLength(2);
    await api().get('/api/v1/members?role=king').set(as(users.admin.key)).expect(400);

    const moved = await api().patch(`/api/v1/members/${extra}`).set(as(users.admin.key)).send({ role: 'admin', team_id: teamA2 }).expect(200);
    expect(moved.body.data).toMatchObject({ user_id: extra, role: 'admin', team_id: teamA2 });
    expect((await api().get(`/api/v1/members?team_id=${teamA2}`).set(as(users.admin.key)).expect(200)).body.data.map((m: { user_id: string }) => m.user_id)).toEqual([extra]);
    const events = (await audited(extra)).map((e) => e.event_type);
    expect(events).toEqual(expect.arrayContaining(['member.role_changed', 'member.team_changed', 'member.added']));

    const owner = await api().patch(`/api/v1/members/${extra}`).set(as(users.admin.key)).send({ role: 'owner' }).expect(403);
    expect(owner.body.error.code).toBe('FORBIDDEN');
    const last = await api().patch(`/api/v1/members/${users.owner.id}`).set(as(users.owner.key)).send({ role: 'member' }).expect(409);
    expect(last.body.error.code).toBe('LAST_OWNER');
    const empty = await api().patch(`/api/v1/members/${extra}`).set(as(users.admin.key)).send({}).expect(400);
    expect(empty.body.error.code).toBe('VALIDATION_ERROR');
    const otherTeam = (await s.accounts.createTeam(CLI_ACTOR, { orgId: orgB, name: 'B team' })).id;
    const cross = await api().patch(`/api/v1/members/${extra}`).set(as(users.admin.key)).send({ team_id: otherTeam }).expect(400);
    expect(cross.body.error.details.issues[0].path).toBe('team_id');
    expect((await s.accounts.membership(orgA, extra))?.teamId).toBe(teamA2);
  });

  it("lists and revokes a member's grants; other organizations' members and grants are 404", async () => {
    const app = await s.clients.create(CLI_ACTOR, { orgId: orgA, name: 'Grant app', redirectUris: ['https://g.example.test/cb'] });
    const consents = s.ds.getRepository(OAuthConsentEntity);
    await consents.insert({ grantId: 'grant-a', userId: extra, clientId: app.client.client_id, orgId: orgA, scope: 'openid workflows:read', revokedAt: null });
    await consents.insert({ grantId: 'grant-b', userId: extra, clientId: app.client.client_id, orgId: orgB, scope: 'openid', revokedAt: null });
    const grants = await api().get(`/api/v1/members/${extra}/grants`).set(as(users.admin.key)).expect(200);
    expect(grants.body.data).toEqual([{ grant_id: 'grant-a', client_id: app.client.client_id, client_name: 'Grant app', scopes: ['openid', 'workflows:read'], created_at: expect.any(String) }]);
    await api().delete(`/api/v1/members/${extra}/grants/grant-b`).set(as(users.admin.key)).expect(404);
    await api().delete(`/api/v1/members/${users.admin.id}/grants/grant-a`).set(as(users.admin.key)).expect(404);
    await api().delete(`/api/v1/members/${extra}/grants/grant-a`).set(as(users.admin.key)).expect(200);
    expect((await consents.findOneBy({ grantId: 'grant-a' }))?.revokedAt).not.toBeNull();
    expect((await consents.findOneBy({ grantId: 'grant-b' }))?.revokedAt).toBeNull();
    const revoked = (await audited(app.client.client_id)).find((e) => e.action === 'consent.revoked');
    expect(revoked).toMatchObject({ event_type: 'consent.revoked', actor: { type: 'api_key' } });

    const bUser = (await s.accounts.createUser(CLI_ACTOR, { email: 'b-user@b.example', password: 'a long enough password', orgId: orgB, role: 'member' })).user.id;
    await api().get(`/api/v1/members/${bUser}`).set(as(users.admin.key)).expect(404);
    await api().patch(`/api/v1/members/${bUser}`).set(as(users.admin.key)).send({ role: 'admin' }).expect(404);
    await api().delete(`/api/v1/members/${bUser}`).set(as(users.admin.key)).expect(404);
    await api().get(`/api/v1/members/${bUser}/grants`).set(as(users.admin.key)).expect(404);
    await api().get('/api/v1/members/not-a-uuid').set(as(users.admin.key)).expect(404);
    expect((await s.accounts.membership(orgB, bUser))?.role).toBe('member');
  });

  it('removes a member (audited, with its event); the last owner cannot be removed', async () => {
    await api().delete(`/api/v1/members/${users.owner.id}`).set(as(users.owner.key)).expect(409);
    await api().delete(`/api/v1/members/${extra}`).set(as(users.owner.key)).expect(200);
    await api().get(`/api/v1/members/${extra}`).set(as(users.owner.key)).expect(404);
    expect((await audited(extra)).map((e) => e.event_type)).toContain('member.removed');
  });
});

describe('invitations', () => {
  it('answers the one-time link once, lists and revokes; refuses what the rules refuse', async () => {
    const created = await api().post('/api/v1/invitations').set(as(users.admin.key)).send({ email: 'New@A.example', team_id: teamA1 }).expect(201);
    expect(created.headers['cache-control']).toBe('no-store');
    expect(created.body.data).toMatchObject({ email: 'new@a.example', role: 'member', team_id: teamA1, invited_by: users.admin.id });
    const link = created.body.data.url as string;
    secrets.push(link.split('/').pop()!);
    expect(link.startsWith(`${env.url}/dashboard/invitations/`)).toBe(true);
    const list = await api().get('/api/v1/invitations').set(as(users.admin.key)).expect(200);
    expect(list.body.data.map((i: { id: string }) => i.id)).toEqual([created.body.data.id]);
    expect(JSON.stringify(list.body)).not.toContain(link);
    expect((await audited(created.body.data.id)).map((e) => e.event_type)).toEqual(['member.invited']);

    const owner = await api().post('/api/v1/invitations').set(as(users.admin.key)).send({ email: 'boss@a.example', role: 'owner' }).expect(403);
    expect(owner.body.error.details.issues[0].path).toBe('role');
    const dup = await api().post('/api/v1/invitations').set(as(users.admin.key)).send({ email: 'member@a.example' }).expect(409);
    expect(dup.body.error.details.issues[0].path).toBe('email');
    const bad = await api().post('/api/v1/invitations').set(as(users.admin.key)).send({ email: 'nobody' }).expect(400);
    expect(bad.body.error.details.issues[0].path).toBe('email');

    await api().delete(`/api/v1/invitations/${created.body.data.id}`).set(as(bKey)).expect(404);
    await api().delete(`/api/v1/invitations/${created.body.data.id}`).set(as(users.admin.key)).expect(200);
    expect(await s.invitations.lookup(link.split('/').pop()!)).toBeNull();
    await api().delete(`/api/v1/invitations/${created.body.data.id}`).set(as(users.admin.key)).expect(404);
    expect((await audited(created.body.data.id)).map((e) => e.event_type)).toContain('invitation.revoked');
  });

  it('an accepted invitation places the new member in its team', async () => {
    const created = await api().post('/api/v1/invitations').set(as(users.owner.key)).send({ email: 'teamed@a.example', role: 'admin', team_id: teamA2 }).expect(201);
    const user = await s.invitations.accept(created.body.data.url.split('/').pop(), 'a long enough password');
    expect(await s.accounts.membership(orgA, user.id)).toMatchObject({ role: 'admin', teamId: teamA2 });
  });
});

describe('teams', () => {
  it("creates, lists, renames; deleting a team with keys needs revoke_keys, which ends the team's keys", async () => {
    const t = await api().post('/api/v1/teams').set(as(users.admin.key)).send({ name: 'Ops' }).expect(201);
    const id = t.body.data.id;
    await api().post('/api/v1/teams').set(as(users.admin.key)).send({ name: 'Ops' }).expect(409);
    await api().post('/api/v1/teams').set(as(users.admin.key)).send({ name: '  ' }).expect(400);
    const renamed = await api().patch(`/api/v1/teams/${id}`).set(as(users.admin.key)).send({ name: 'Operations' }).expect(200);
    expect(renamed.body.data).toMatchObject({ id, name: 'Operations', member_count: 0 });
    const list = await api().get('/api/v1/teams').set(as(users.admin.key)).expect(200);
    expect(list.body.data.map((x: { name: string }) => x.name)).toEqual(['A1', 'A2', 'Operations']);

    const opsKey = await keyFor(orgA, { preset: 'read_only', team_id: id });
    const { user } = await s.accounts.createUser(CLI_ACTOR, { email: 'ops@a.example', password: 'a long enough password', orgId: orgA, role: 'member', teamId: id });
    const refused = await api().delete(`/api/v1/teams/${id}`).set(as(users.admin.key)).expect(409);
    expect(refused.body.error).toMatchObject({ code: 'TEAM_HAS_KEYS', details: { api_keys: 1 } });
    await api().get('/api/v1/auth/whoami').set(as(opsKey.key)).expect(200);
    await api().delete(`/api/v1/teams/${id}`).set(as(bKey)).expect(404);

    const deleted = await api().delete(`/api/v1/teams/${id}?revoke_keys=true`).set(as(users.admin.key)).expect(200);
    expect(deleted.body.data).toEqual({ id, deleted: true, revoked_api_keys: [opsKey.id] });
    await api().get('/api/v1/auth/whoami').set(as(opsKey.key)).expect(401);
    expect((await s.accounts.membership(orgA, user.id))?.teamId).toBeNull();
    await api().patch(`/api/v1/teams/${id}`).set(as(users.admin.key)).send({ name: 'Back' }).expect(404);
    expect((await audited(id)).map((e) => e.event_type)).toEqual(expect.arrayContaining(['team.created', 'team.updated', 'team.deleted']));
    expect((await audited(opsKey.id)).map((e) => e.event_type)).toContain('api_key.revoked');
  });
});

describe('organization settings', () => {
  it('any credential of the organization reads them; owners and admins change them (audited); the query setting applies at once', async () => {
    const read = await api().get('/api/v1/organization').set(as(users.member.key)).expect(200);
    expect(read.body.data).toMatchObject({ id: orgA, name: 'Org A', plan: 'enterprise', allow_query_api_key: true });
    await api().get(`/api/v1/auth/whoami?api-key=${users.member.key}`).expect(200);
    const changed = await api().patch('/api/v1/organization').set(as(users.admin.key)).send({ name: 'Org A renamed', allow_query_api_key: false }).expect(200);
    expect(changed.body.data).toMatchObject({ name: 'Org A renamed', allow_query_api_key: false });
    const q = await api().get(`/api/v1/auth/whoami?api-key=${users.member.key}`).expect(401);
    expect(q.body.error.code).toBe('QUERY_API_KEY_DISABLED');
    expect((await audited(orgA)).map((e) => e.event_type)).toContain('organization.updated');
    const bad = await api().patch('/api/v1/organization').set(as(users.admin.key)).send({ name: '', plan: 'free' }).expect(400);
    expect(bad.body.error.details.issues.map((i: { path: string }) => i.path).sort()).toEqual(['name', 'plan']);
    await api().patch('/api/v1/organization').set(as(users.admin.key)).send({ allow_query_api_key: true }).expect(200);
    // Org B's key changes org B only.
    await api().patch('/api/v1/organization').set(as(bKey)).send({ name: 'B renamed' }).expect(200);
    expect((await s.accounts.getOrganization(orgA)).name).toBe('Org A renamed');
  });
});

describe('restricted keys and API-key management', () => {
  it('a workflow- or team-restricted key with api_keys:write cannot rename, narrow, delete or rate-limit keys outside its restriction', async () => {
    const inWf = await keyFor(orgA, { preset: 'read_only', workflow_id: 'wf_1' });
    const otherWf = await keyFor(orgA, { preset: 'read_only', workflow_id: 'wf_2' });
    const unrestricted = await keyFor(orgA, { preset: 'read_only' });
    const inTeam = await keyFor(orgA, { preset: 'read_only', team_id: teamA1 });
    const otherTeam = await keyFor(orgA, { preset: 'read_only', team_id: teamA2 });
    const limits = { limits: { read: { limit: 5, window: '1m' } } };
    const attempts = (id: string) => [
      api().patch(`/api/v1/auth/api-keys/${id}`).send({ name: 'taken over' }),
      api().patch(`/api/v1/auth/api-keys/${id}`).send({ scopes: ['workflows:read'] }),
      api().put(`/api/v1/rate-limits/api-keys/${id}`).send(limits),
      api().delete(`/api/v1/auth/api-keys/${id}`),
    ];
    for (const [caller, outside, code] of [
      [wfKey, otherWf, 'WORKFLOW_ACCESS_DENIED'],
      [wfKey, unrestricted, 'WORKFLOW_ACCESS_DENIED'],
      [teamKey, otherTeam, 'FORBIDDEN'],
      [teamKey, unrestricted, 'FORBIDDEN'],
    ] as const) {
      for (const call of attempts(outside.id)) {
        const r = await call.set(as(caller.key)).expect(403);
        expect(r.body.error.code).toBe(code);
      }
    }
    const rows = await s.ds.query(`SELECT name, scopes, rate_limit, revoked_at FROM api_keys WHERE id = ANY($1)`, [[otherWf.id, unrestricted.id, otherTeam.id]]);
    for (const row of rows) expect(row).toMatchObject({ name: 'k', rate_limit: null, revoked_at: null });
    // Within their restriction they may.
    await api().patch(`/api/v1/auth/api-keys/${inWf.id}`).set(as(wfKey.key)).send({ name: 'mine' }).expect(200);
    await api().put(`/api/v1/rate-limits/api-keys/${inTeam.id}`).set(as(teamKey.key)).send(limits).expect(200);
    await api().delete(`/api/v1/auth/api-keys/${inTeam.id}`).set(as(teamKey.key)).expect(200);
  });

  it('a restricted key cannot change organization-wide settings, limits or webhooks', async () => {
    for (const k of [wfKey, teamKey]) {
      const limits = await api().put('/api/v1/rate-limits').set(as(k.key)).send({ limits: { write: { limit: 100000, window: '1m' } } }).expect(403);
      expect(limits.body.error).toMatchObject({ code: 'RESTRICTED_CREDENTIAL' });
      await api().patch('/api/v1/organization').set(as(k.key)).send({ allow_query_api_key: false }).expect(403);
      const hook = await api().post('/api/v1/webhooks').set(as(k.key)).send({ url: 'https://hooks.example.test/x' }).expect(403);
      expect(hook.body.error.code).toBe('RESTRICTED_CREDENTIAL');
    }
    expect((await s.rateLimitOverrides.show(orgA)).organization_overrides).toBeNull();
    expect((await s.accounts.getOrganization(orgA)).settings.allowQueryApiKey).not.toBe(false);
  });

  it('PUT /api/v1/rate-limits answers one validation shape, whether the body or the limits are wrong', async () => {
    const shape = await api().put('/api/v1/rate-limits').set(as(cliKey)).send({ limits: 5 }).expect(400);
    const limits = await api().put('/api/v1/rate-limits').set(as(cliKey)).send({ limits: { write: { limit: 5, window: 0 } } }).expect(400);
    for (const r of [shape, limits]) {
      expect(r.body.error.code).toBe('VALIDATION_ERROR');
      expect(Object.keys(r.body.error.details)).toEqual(['issues']);
      expect(r.body.error.details.issues[0].path).toMatch(/^limits/);
    }
  });
});
