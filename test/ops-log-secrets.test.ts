import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { hashApiKey } from '../src/credentials/api-key-hash.js';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, createClient, createOrg, tokenRequest } from './support/oauth.js';
import { createKey, freePort, introspect, OwnRedis } from './ratelimit-support.js';

// Library errors carry what they were called with: ioredis' ReplyError and AbortError the command's
// arguments (Redis keys name access tokens), TypeORM's QueryFailedError the statement's parameters (key
// hashes). Each failure is provoked for real and the whole log is searched for the secrets it used.
let env: TestEnv;
let ownRedis: OwnRedis;
let stopped: TestEnv;
beforeAll(async () => {
  env = await startTestServer({ LOG_LEVEL: 'debug' });
  ownRedis = new OwnRedis(await freePort());
  await ownRedis.start();
  stopped = await startTestServer({ LOG_LEVEL: 'debug', REDIS_URL: ownRedis.url });
});
afterAll(async () => {
  await env?.close();
  await stopped?.close();
  await ownRedis?.stop();
});

async function clientCredentialsToken(e: TestEnv) {
  const client = await createClient(e, { grantTypes: ['client_credentials'], redirectUris: [] });
  const r = await tokenRequest(e, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret!) });
  expect(r.status).toBe(200);
  return { client, token: r.body.access_token as string };
}

describe('nothing secret in error logs', () => {
  it('a Redis error reply is logged without the command arguments (the token key and payload)', async () => {
    const client = await createClient(stopped, { grantTypes: ['client_credentials'], redirectUris: [] });
    // This file's own redis-server refuses writes (OOM): storing the new token fails with an error
    // reply that ioredis annotates with the command and its arguments (the key names the token).
    const raw = new Redis(ownRedis.url);
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    await raw.config('SET', 'maxmemory', '1');
    const before = stopped.logs.lines.length;
    let r;
    try {
      r = await tokenRequest(stopped, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret!) });
    } finally {
      await raw.config('SET', 'maxmemory', '0');
      raw.disconnect();
    }
    expect(r.status).toBe(500);
    const text = stopped.logs.lines.slice(before).join('\n');
    // The failure was logged, naming the command (so the search below looks at something)...
    expect(text).toMatch(/OOM command not allowed/);
    expect(text).toMatch(/"command":"set"/i);
    // ...without the token's key, the token payload or the client's secret.
    expect(text).not.toContain('oidc:ClientCredentials:');
    expect(text).not.toContain('"args"');
    expect(text).not.toContain(client.clientSecret!);
  });

  it('Redis stopped mid-request: aborted commands are logged without their arguments', async () => {
    const orgId = await createOrg(stopped);
    const rs = await createClient(stopped, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    const { token } = await clientCredentialsToken(stopped);
    const before = stopped.logs.lines.length;
    const pending = introspect(stopped, rs, token).catch(() => ({ status: 0, body: {} }));
    await ownRedis.stop();
    const r = await pending;
    // Introspection after the stop needs Redis for the token: it fails, quickly, and says so.
    const after = await introspect(stopped, rs, token);
    expect([200, 500]).toContain(r.status);
    expect(after.status).toBe(500);
    const text = stopped.logs.lines.slice(before).join('\n');
    expect(text).toMatch(/introspection failed/);
    expect(text).not.toContain(token);
    await ownRedis.start();
  });

  it('a failing SQL statement is logged without its parameters (the API key hash) or the key', async () => {
    const orgId = await createOrg(env);
    const rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    const { key } = await createKey(env, orgId);
    const keyHash = hashApiKey(env.config.apiKeys.pepper, key);
    // The verification query names this column: renaming it makes the statement fail with the hash as
    // its parameter. (This file's own database.)
    const { ds } = env.server.services;
    await ds.query('ALTER TABLE api_keys RENAME COLUMN previous_key_hash TO previous_key_hash_moved');
    let r;
    try {
      r = await introspect(env, rs, key);
    } finally {
      await ds.query('ALTER TABLE api_keys RENAME COLUMN previous_key_hash_moved TO previous_key_hash');
    }
    expect(r.status).toBe(500);
    const text = env.logs.text;
    expect(text).toMatch(/QueryFailedError/);
    expect(text).toMatch(/previous_key_hash/); // the statement text is kept: it names no value
    expect(text).not.toContain(keyHash);
    expect(text).not.toContain(key);
    expect(text).not.toMatch(/"parameters"/);
  });

  it('PostgreSQL messages that quote the offending input are logged without it', async () => {
    const { ds } = env.server.services;
    const secret = `sk-${'A'.repeat(38)}`;
    const logger = env.server.services.logger;
    try {
      await ds.query('SELECT $1::uuid', [secret]);
    } catch (err) {
      logger.error({ err }, 'lookup failed');
    }
    await ds.query('INSERT INTO organizations (id, name, plan) VALUES ($1, $2, $3)', ['00000000-0000-0000-0000-000000000001', 'x', 'free']).catch(() => {});
    try {
      await ds.query('INSERT INTO organizations (id, name, plan) VALUES ($1, $2, $3)', ['00000000-0000-0000-0000-000000000001', secret, 'free']);
    } catch (err) {
      logger.error({ err }, 'insert failed');
    }
    const text = env.logs.text;
    expect(text).toMatch(/invalid input syntax for type uuid/);
    expect(text).toMatch(/duplicate key value violates unique constraint/);
    expect(text).not.toContain(secret);
    expect(text).not.toContain('00000000-0000-0000-0000-000000000001');
  });
});
