import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { rotateKeys } from '../src/oauth/signing-keys.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { authorize, clientConfig, createClient, createUser, introspector, oidc, type TestClient } from './support/oauth.js';

let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

const jwksNow = async (base = env.url): Promise<JSONWebKeySet> => (await fetch(new URL('/jwks', base))).json() as Promise<JSONWebKeySet>;

describe('signing key rotation', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await createClient(env, { grantTypes: ['client_credentials'], redirectUris: [], scope: 'workflows:read' });
  });

  const jwtAccessToken = async () => {
    const cfg = await clientConfig(env, client);
    return (await oidc.clientCredentialsGrant(cfg, { scope: 'workflows:read', resource: env.config.apiAudience })).access_token;
  };

  it('a token signed before a rotation still verifies after it; new tokens use the new key', async () => {
    const before = await jwtAccessToken();
    const oldKid = decodeProtectedHeader(before).kid!;
    expect((await jwksNow()).keys.map((k) => k.kid)).toContain(oldKid);

    const { added } = await rotateKeys(env.config.keysDir, 86400);
    await env.restart();

    const set = await jwksNow();
    const kids = set.keys.map((k) => k.kid);
    expect(kids).toContain(oldKid);
    for (const k of added) expect(kids).toContain(k.kid);
    for (const k of set.keys) expect(k).not.toHaveProperty('d');

    const { payload } = await jwtVerify(before, createLocalJWKSet(set), { issuer: env.url, audience: env.config.apiAudience, typ: 'at+jwt' });
    expect(payload.org_id).toBe(client.orgId);

    const after = await jwtAccessToken();
    const newKid = decodeProtectedHeader(after).kid!;
    expect(newKid).not.toBe(oldKid);
    expect(newKid).toBe(added.find((k) => k.alg === 'ES256')!.kid);
    await jwtVerify(after, createLocalJWKSet(set), { audience: env.config.apiAudience });
  });

  it('every instance publishes and signs with the same key set', async () => {
    const other = await env.startInstance();
    const a = (await jwksNow()).keys.map((k) => k.kid).sort();
    const b = (await jwksNow(`http://127.0.0.1:${(other.server.address() as { port: number }).port}`)).keys.map((k) => k.kid).sort();
    expect(b).toEqual(a);
  });
});

describe('storage survives a restart', () => {
  it('the browser session, the grant and the refresh token still work after a restart', async () => {
    const rs = await introspector(env);
    const user = await createUser(env);
    const client = await createClient(env, { orgId: user.orgIds[0] });
    const first = await authorize(env, { client, user, scope: 'openid offline_access email', params: { prompt: 'consent' } });
    expect(first.pages).toEqual(['login', 'consent']);
    const { refresh_token, access_token } = first.tokens!;

    await env.restart();

    // The signed-in browser skips the login page; the remembered consent skips the consent page.
    const second = await authorize(env, { client, user, scope: 'openid offline_access email', browser: first.browser });
    expect(second.pages).toEqual([]);
    expect(second.tokens!.claims()!.sub).toBe(user.id);

    // The access token (Redis) and the refresh token (PostgreSQL) are still known.
    const intro = await oidc.tokenIntrospection(rs.config, access_token);
    expect(intro.active).toBe(true);
    expect(intro.org_id).toBe(user.orgIds[0]);
    const cfg = await clientConfig(env, client);
    const refreshed = await oidc.refreshTokenGrant(cfg, refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect((await oidc.tokenIntrospection(rs.config, refreshed.access_token)).org_id).toBe(user.orgIds[0]);

    // The grant is in PostgreSQL.
    const grants = await env.server.services.ds.query(`SELECT id FROM oidc_artifacts WHERE model = 'Grant' AND payload->>'accountId' = $1`, [user.id]);
    expect(grants.length).toBeGreaterThanOrEqual(1);
  });

  it('a Redis flush loses only short-lived artifacts: sessions, grants and refresh tokens remain', async () => {
    const user = await createUser(env);
    const client = await createClient(env, { orgId: user.orgIds[0] });
    const first = await authorize(env, { client, user, scope: 'openid offline_access', params: { prompt: 'consent' } });
    // Delete every key of this test server's Redis prefix (not other test files').
    const kv = env.server.services.kv as unknown as { client?: { keys(p: string): Promise<string[]>; del(...k: string[]): Promise<number> } };
    expect(env.server.services.kv.kind).toBe('redis');
    const keys = await kv.client!.keys(`${env.config.redisPrefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    await kv.client!.del(...keys.map((k) => k.slice(env.config.redisPrefix.length)));
    expect(await kv.client!.keys(`${env.config.redisPrefix}*`)).toEqual([]);
    const second = await authorize(env, { client, user, scope: 'openid offline_access', browser: first.browser });
    expect(second.pages).toEqual([]);
    const cfg = await clientConfig(env, client);
    expect((await oidc.refreshTokenGrant(cfg, first.tokens!.refresh_token!)).access_token).toBeTruthy();
  });
});
