import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import { startTestServer, type TestEnv } from './support/server.js';

/**
 * A client's jwks_uri is fetched by the server itself, and an unsigned or forged client assertion
 * naming the client is enough to make it fetch: the outbound policy applies at registration and at
 * fetch time, for oidc-provider's fetcher (/token) and Flowgate's (introspection, /ratelimit/check).
 */

/** A JWKS server on 127.0.0.1 that counts every TCP connection, not only complete requests. */
async function jwksServer(jwks: { keys: JWK[] }) {
  let connections = 0;
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(jwks));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/jwks`,
    get connections() {
      return connections;
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

async function keyPair(): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  return { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), alg: 'ES256', use: 'sig', kid: 'k1' } };
}

function assertion(key: CryptoKey, clientId: string, aud: string) {
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(key);
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function post(env: TestEnv, path: string, fields: Record<string, string>) {
  const res = await fetch(`${env.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
}

/** The three doors where an assertion names a client whose keys live at its jwks_uri. */
async function knock(env: TestEnv, clientId: string, key: CryptoKey) {
  const token = await post(env, '/token', { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(key, clientId, env.url) });
  const introspection = await post(env, '/token/introspection', { token: 'x', client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(key, clientId, env.url) });
  const check = await post(env, '/ratelimit/check', { category: 'webhook', key: '1.2.3.4', client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(key, clientId, env.url) });
  return { token, introspection, check };
}

describe('jwks_uri and the outbound policy (default: private networks refused)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestServer();
  });
  afterAll(async () => env?.close());

  it('refuses a jwks_uri aimed at the metadata address or loopback at registration', async () => {
    const orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'ssrf' })).id;
    for (const jwksUri of ['https://169.254.169.254/latest/meta-data/', 'https://localhost:8443/jwks', 'https://[::ffff:0:7f00:1]/jwks', 'https://[64:ff9b:1::a9fe:a9fe]/jwks']) {
      const err = await env.server.services.clients
        .create(CLI_ACTOR, { orgId, name: 'x', grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'private_key_jwt', jwksUri, introspect: true })
        .then(() => undefined, (e) => e);
      expect(err, jwksUri).toMatchObject({ status: 400, code: 'VALIDATION_ERROR' });
      expect(err.message).toMatch(/jwks_uri host .* is not allowed/);
    }
  });

  it('never connects to a private jwks_uri at fetch time, whichever endpoint is asked, and answers invalid_client', async () => {
    const { privateKey, jwk } = await keyPair();
    const jwks = await jwksServer({ keys: [jwk] });
    try {
      const s = env.server.services;
      const orgId = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'ssrf-fetch' })).id;
      // Stored directly, as if the name had been public at registration and points inside now.
      const clientId = `fgc_${randomBytes(8).toString('hex')}`;
      const metadata = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwks.url, scope: 'workflows:read' };
      await s.ds.query(`INSERT INTO oauth_clients (client_id, org_id, name, metadata, introspect) VALUES ($1, $2, 'rs', $3, true)`, [clientId, orgId, JSON.stringify(metadata)]);
      await s.clientRows.changed(clientId);
      const r = await knock(env, clientId, privateKey);
      expect(r.token).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
      expect(r.introspection).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
      expect(r.check).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
      expect(jwks.connections).toBe(0);
    } finally {
      await jwks.close();
    }
  });
});

describe('jwks_uri with OUTBOUND_ALLOW_PRIVATE_NETWORKS (development): the pinned fetch does fetch', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestServer({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' });
  });
  afterAll(async () => env?.close());

  it('authenticates a private_key_jwt client through its jwks_uri at /token, introspection and /ratelimit/check', async () => {
    expect(env.logs.text).toMatch(/OUTBOUND_ALLOW_PRIVATE_NETWORKS is on/);
    const { privateKey, jwk } = await keyPair();
    const jwks = await jwksServer({ keys: [jwk] });
    try {
      const orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'dev' })).id;
      const { client } = await env.server.services.clients.create(CLI_ACTOR, {
        orgId, name: 'rs', grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'private_key_jwt', jwksUri: jwks.url, introspect: true, scope: 'workflows:read',
      });
      const r = await knock(env, client.client_id, privateKey);
      expect(r.token.status).toBe(200);
      expect(r.introspection).toMatchObject({ status: 200, body: { active: false } });
      expect(r.check.status).toBe(200);
      expect(jwks.connections).toBeGreaterThan(0);
    } finally {
      await jwks.close();
    }
  });

  it('still accepts the deprecated WEBHOOK_ALLOW_PRIVATE_NETWORKS name', async () => {
    const { loadConfig } = await import('../src/config/load.js');
    const base = { NODE_ENV: 'test', COOKIE_SECRETS: 'x'.repeat(32), API_KEY_PEPPER: 'p'.repeat(16), DATA_DIR: env.config.dataDir };
    expect(loadConfig({ ...base, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }).outbound.allowPrivateNetworks).toBe(true);
    expect(loadConfig({ ...base, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }).outbound.allowPrivateNetworks).toBe(true);
    expect(loadConfig(base).outbound.allowPrivateNetworks).toBe(false);
  });
});
