import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { authorize, basicAuth, createClient, createOrg, createUser, tokenRequest } from './support/oauth.js';
import { runCliJson } from './support/cli.js';

let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

async function waitForAction(orgId: string | null, action: string): Promise<any[]> {
  for (let i = 0; i < 40; i++) {
    const rows: any[] = await env.server.services.ds.query(
      `SELECT * FROM audit_events WHERE action = $1 AND org_id IS NOT DISTINCT FROM $2`,
      [action, orgId],
    );
    if (rows.length) return rows;
    await new Promise((r) => setTimeout(r, 50));
  }
  return [];
}

describe('security events', () => {
  it('a replayed refresh token revokes the grant and records security.refresh_token_reused for the organization', async () => {
    const orgId = await createOrg(env);
    const client = await createClient(env, { orgId, grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid offline_access workflows:read' });
    const user = await createUser(env, { orgIds: [orgId] });
    const r = await authorize(env, { client, user, scope: 'openid offline_access', params: { prompt: 'consent' } });
    const rt = r.tokens!.refresh_token!;
    const auth = { authorization: basicAuth(client.clientId, client.clientSecret!) };
    expect((await tokenRequest(env, { grant_type: 'refresh_token', refresh_token: rt }, auth)).status).toBe(200);
    expect((await waitForAction(orgId, 'security.refresh_token_reused')).length).toBe(0);
    expect((await tokenRequest(env, { grant_type: 'refresh_token', refresh_token: rt }, auth)).body.error).toBe('invalid_grant');
    const rows = await waitForAction(orgId, 'security.refresh_token_reused');
    expect(rows).toHaveLength(1);
    expect(rows[0].details).toMatchObject({ client_id: client.clientId, user_id: user.id });
    expect(JSON.stringify(rows[0])).not.toContain(rt);
  });

  it('the audit log is append-only in the database itself: UPDATE, DELETE and TRUNCATE are refused', async () => {
    const ds = env.server.services.ds;
    const [row] = await ds.query(`SELECT id FROM audit_events LIMIT 1`);
    expect(row).toBeDefined();
    await expect(ds.query(`UPDATE audit_events SET action = 'tampered' WHERE id = $1`, [row.id])).rejects.toThrow(/append-only/);
    await expect(ds.query(`DELETE FROM audit_events WHERE id = $1`, [row.id])).rejects.toThrow(/append-only/);
    await expect(ds.query(`TRUNCATE audit_events CASCADE`)).rejects.toThrow(/append-only/);
    const [still] = await ds.query(`SELECT action FROM audit_events WHERE id = $1`, [row.id]);
    expect(still.action).not.toBe('tampered');
  });

  it('keys rotate records signing_key.rotated (for every organization) with the new key ids', async () => {
    const { code, out } = await runCliJson(env, 'keys', 'rotate');
    expect(code).toBe(0);
    const rows = await waitForAction(null, 'signing_key.rotated');
    expect(rows).toHaveLength(1);
    expect(rows[0].details.added.map((k: { kid: string }) => k.kid).sort()).toEqual([...out.added].sort());
    expect(JSON.stringify(rows[0].details)).not.toMatch(/"d"\s*:/); // no private key material
  });
});
