import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { startTestServer, type TestEnv } from './support/server.js';
import {
  authorize,
  basicAuth,
  clientConfig,
  createClient,
  createUser,
  expectOAuthError,
  introspector,
  oidc,
  REDIRECT_URI,
  tokenRequest,
  type TestClient,
} from './support/oauth.js';

let env: TestEnv;
let rs: Awaited<ReturnType<typeof introspector>>;
let tokenEndpoint: string;

beforeAll(async () => {
  env = await startTestServer();
  rs = await introspector(env);
  tokenEndpoint = rs.config.serverMetadata().token_endpoint!;
});
afterAll(async () => env?.close());

const CC = ['client_credentials'] as const;

describe('client_credentials with client secrets', () => {
  let basic: TestClient;
  let post: TestClient;
  beforeAll(async () => {
    basic = await createClient(env, { grantTypes: [...CC], redirectUris: [], authMethod: 'client_secret_basic', scope: 'workflows:read runs:read' });
    post = await createClient(env, { grantTypes: [...CC], redirectUris: [], authMethod: 'client_secret_post', scope: 'workflows:read' });
  });

  it('client_secret_basic: issues a token that carries the client’s organization', async () => {
    const cfg = await clientConfig(env, basic, oidc.ClientSecretBasic(basic.clientSecret!));
    const t = await oidc.clientCredentialsGrant(cfg, { scope: 'workflows:read' });
    expect(t.access_token).toBeTruthy();
    expect(t.refresh_token).toBeUndefined();
    const intro = await oidc.tokenIntrospection(rs.config, t.access_token);
    expect(intro.active).toBe(true);
    expect(intro.client_id).toBe(basic.clientId);
    expect(intro.org_id).toBe(basic.orgId);
    expect(intro.scope).toBe('workflows:read');
  });

  it('client_secret_post: issues a token', async () => {
    const cfg = await clientConfig(env, post, oidc.ClientSecretPost(post.clientSecret!));
    const t = await oidc.clientCredentialsGrant(cfg, { scope: 'workflows:read' });
    expect((await oidc.tokenIntrospection(rs.config, t.access_token)).org_id).toBe(post.orgId);
  });

  it('a JWT access token for the API audience carries org_id', async () => {
    const cfg = await clientConfig(env, basic);
    const t = await oidc.clientCredentialsGrant(cfg, { scope: 'workflows:read', resource: env.config.apiAudience });
    const payload = JSON.parse(Buffer.from(t.access_token.split('.')[1], 'base64url').toString());
    expect(payload.aud).toBe(env.config.apiAudience);
    expect(payload.org_id).toBe(basic.orgId);
  });

  it('the registered auth method is enforced: a private_key_jwt client cannot authenticate with a secret', async () => {
    // oidc-provider 9 treats client_secret_basic and client_secret_post as one family (the same
    // secret either way), so only crossing families is refused.
    const pkj = await createClient(env, { grantTypes: [...CC], redirectUris: [], authMethod: 'private_key_jwt' });
    const res = await tokenRequest(env, { grant_type: 'client_credentials' }, { authorization: basicAuth(pkj.clientId, basic.clientSecret!) });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('a wrong secret is invalid_client (basic and post), in the RFC 6749 error form', async () => {
    const wrong = randomBytes(32).toString('base64url');
    const b = await tokenRequest(env, { grant_type: 'client_credentials' }, { authorization: basicAuth(basic.clientId, wrong) });
    expect(b.status).toBe(401);
    expect(b.body).toMatchObject({ error: 'invalid_client', error_description: expect.any(String) });
    const p = await tokenRequest(env, { grant_type: 'client_credentials', client_id: post.clientId, client_secret: wrong });
    expect(p.body.error).toBe('invalid_client');
    // Another client's secret does not work either.
    const cross = await tokenRequest(env, { grant_type: 'client_credentials', client_id: post.clientId, client_secret: basic.clientSecret! });
    expect(cross.body.error).toBe('invalid_client');
    await expectOAuthError(oidc.clientCredentialsGrant(await clientConfig(env, basic, oidc.ClientSecretBasic(wrong))), 'invalid_client');
  });

  it('an unknown scope is invalid_scope', async () => {
    const cfg = await clientConfig(env, post, oidc.ClientSecretPost(post.clientSecret!));
    await expectOAuthError(oidc.clientCredentialsGrant(cfg, { scope: 'runs:read' }), 'invalid_scope');
  });

  it('client secrets are stored hashed, never in plaintext', async () => {
    const rows: { client_id: string; secret_hash: string; metadata: unknown }[] = await env.server.services.ds.query(
      'SELECT client_id, secret_hash, metadata FROM oauth_clients WHERE client_id = ANY($1)',
      [[basic.clientId, post.clientId]],
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const secret = row.client_id === basic.clientId ? basic.clientSecret! : post.clientSecret!;
      expect(row.secret_hash).toBeTruthy();
      expect(row.secret_hash).not.toBe(secret);
      expect(row.secret_hash).not.toContain(secret);
      expect(JSON.stringify(row.metadata)).not.toContain(secret);
    }
    const dump = JSON.stringify(await env.server.services.ds.query('SELECT * FROM oauth_clients'));
    expect(dump).not.toContain(basic.clientSecret!);
    expect(env.logs.text).not.toContain(basic.clientSecret!);
  });
});

describe('private_key_jwt (RFC 7523 §2.2)', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await createClient(env, { grantTypes: [...CC], redirectUris: [], authMethod: 'private_key_jwt', scope: 'workflows:read' });
  });

  const assertion = (key: CryptoKey, o: { jti?: string; exp?: number; iat?: number; kid?: string; alg?: string; aud?: string } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: o.alg ?? 'ES256', kid: o.kid ?? client.publicJwk!.kid })
      .setIssuer(client.clientId)
      .setSubject(client.clientId)
      .setAudience(o.aud ?? tokenEndpoint)
      .setJti(o.jti ?? randomBytes(16).toString('hex'))
      .setIssuedAt(o.iat ?? now)
      .setExpirationTime(o.exp ?? now + 60)
      .sign(key);
  };
  const present = (jwt: string) =>
    tokenRequest(env, {
      grant_type: 'client_credentials',
      client_id: client.clientId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: jwt,
    });

  it('openid-client authenticates with the registered key', async () => {
    const cfg = await clientConfig(env, client);
    const t = await oidc.clientCredentialsGrant(cfg, { scope: 'workflows:read' });
    expect((await oidc.tokenIntrospection(rs.config, t.access_token)).org_id).toBe(client.orgId);
  });

  it('accepts the issuer as audience too', async () => {
    const res = await present(await assertion(client.privateKey!, { aud: env.url }));
    expect(res.status).toBe(200);
  });

  it('an assertion is single-use by jti: a replay is invalid_client', async () => {
    const jwt = await assertion(client.privateKey!);
    expect((await present(jwt)).status).toBe(200);
    const replay = await present(jwt);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
    // Same jti in a freshly signed assertion: still a replay.
    const jti = randomBytes(8).toString('hex');
    expect((await present(await assertion(client.privateKey!, { jti }))).status).toBe(200);
    expect((await present(await assertion(client.privateKey!, { jti }))).body.error).toBe('invalid_client');
  });

  it('one assertion sent many times at once is accepted once (RFC 7523 §3 item 7: the jti is claimed atomically)', async () => {
    const jwt = await assertion(client.privateKey!);
    const answers = await Promise.all(Array.from({ length: 12 }, () => present(jwt)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 401 && a.body.error === 'invalid_client')).toHaveLength(11);
  });

  it('an expired assertion is invalid_client', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await present(await assertion(client.privateKey!, { iat: now - 600, exp: now - 300 }));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('an assertion with alg none is invalid_client', async () => {
    const now = Math.floor(Date.now() / 1000);
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: client.clientId, sub: client.clientId, aud: tokenEndpoint, jti: randomBytes(8).toString('hex'), iat: now, exp: now + 60 })}.`;
    const res = await present(unsigned);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('an assertion signed by a key the client never registered is invalid_client (with and without the registered kid)', async () => {
    const stranger = await generateKeyPair('ES256');
    for (const kid of [client.publicJwk!.kid!, 'unknown-kid']) {
      const res = await present(await assertion(stranger.privateKey, { kid }));
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    }
    // Another client's valid key and assertion naming this client: refused.
    const other = await createClient(env, { grantTypes: [...CC], redirectUris: [], authMethod: 'private_key_jwt' });
    const res = await present(await assertion(other.privateKey!, { kid: other.publicJwk!.kid }));
    expect(res.body.error).toBe('invalid_client');
  });

  it('an assertion for another client (iss/sub mismatch) is invalid_client', async () => {
    const other = await createClient(env, { grantTypes: [...CC], redirectUris: [], authMethod: 'private_key_jwt' });
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: other.publicJwk!.kid })
      .setIssuer(other.clientId)
      .setSubject(other.clientId)
      .setAudience(tokenEndpoint)
      .setJti(randomBytes(8).toString('hex'))
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(other.privateKey!);
    // client_id says one client, the assertion another: oidc-provider calls the request malformed.
    const res = await present(jwt);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.access_token).toBeUndefined();
  });

  it('RS256 keys work too', async () => {
    const rsClient = await createClient(env, { grantTypes: [...CC], redirectUris: [], authMethod: 'private_key_jwt', keyAlg: 'RS256', scope: 'workflows:read' });
    const cfg = await clientConfig(env, rsClient);
    expect((await oidc.clientCredentialsGrant(cfg, { scope: 'workflows:read' })).access_token).toBeTruthy();
  });
});

describe('public clients (token_endpoint_auth_method none) need PKCE', () => {
  let pub: TestClient;
  beforeAll(async () => {
    pub = await createClient(env, { authMethod: 'none', grantTypes: ['authorization_code', 'refresh_token'] });
  });

  it('completes the code flow with PKCE and no secret', async () => {
    const user = await createUser(env, { orgIds: [pub.orgId!] });
    const r = await authorize(env, { client: pub, user, scope: 'openid email' });
    expect(r.tokens!.claims()!.sub).toBe(user.id);
    expect(pub.clientSecret).toBeUndefined();
  });

  it('refuses an authorization request without code_challenge', async () => {
    const user = await createUser(env, { orgIds: [pub.orgId!] });
    const r = await authorize(env, { client: pub, user, noPkce: true });
    expect(r.callbackUrl.origin + r.callbackUrl.pathname).toBe(REDIRECT_URI);
    expect(r.callbackUrl.searchParams.get('error')).toBe('invalid_request');
    expect(r.callbackUrl.searchParams.get('error_description')).toMatch(/PKCE/);
    expect(r.code).toBeUndefined();
  });

  it('cannot use client_credentials', async () => {
    const res = await tokenRequest(env, { grant_type: 'client_credentials', client_id: pub.clientId });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unauthorized_client');
  });

  it('cannot be registered with client_credentials', async () => {
    await expect(createClient(env, { authMethod: 'none', grantTypes: ['client_credentials'], redirectUris: [] })).rejects.toThrow(/public clients/);
  });
});
