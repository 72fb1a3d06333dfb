import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiChecker, request } from './support/api.js';
import type { Test } from 'supertest';
import type { DataSource } from 'typeorm';
import { startTestServer, type TestEnv } from './support/server.js';
import type { RunningServer } from '../src/server.js';
import type { Services } from '../src/compose/services.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { generateApiKey } from '../src/credentials/api-key-format.js';

let env: TestEnv;
let s: Services;
let second: RunningServer;
let orgId: string;
let admin: string;
const issued: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const whoami = (url: string, key: string) => request(url).get('/api/v1/auth/whoami').set('Authorization', `Bearer ${key}`);

/**
 * Counts reads of api_keys, on every DataSource of this process (both instances). The batched
 * last_used_at flush (an UPDATE on a timer) is not a read and may land in any window.
 */
function countApiKeyQueries(ds: DataSource) {
  const qr = ds.createQueryRunner();
  const proto = Object.getPrototypeOf(qr) as { query: (sql: string, ...rest: unknown[]) => Promise<unknown> };
  void qr.release();
  const original = proto.query;
  const counter = { n: 0, restore: () => (proto.query = original) };
  proto.query = function (this: unknown, sql: string, ...rest: unknown[]) {
    // The verification look-up of a presented key (timers such as the expiry scan also read api_keys).
    if (/\bk\.key_hash = ANY\(/.test(sql)) counter.n++;
    return original.call(this, sql, ...rest);
  };
  return counter;
}

async function cliKey(input: Record<string, unknown>) {
  const { key, apiKey } = await s.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'k', ...input } as never);
  issued.push(key);
  return { id: apiKey.id, key };
}

beforeAll(async () => {
  env = await startTestServer();
  s = env.server.services;
  second = await env.startInstance();
  // The answer checker reads each instance's /openapi.json once: do it now, outside the timed tests.
  await Promise.all([openApiChecker(env.url), openApiChecker(second.url)]);
  orgId = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Org', plan: 'enterprise' })).id;
  admin = (await cliKey({ name: 'admin', preset: 'full_access' })).key;
});

afterAll(async () => {
  if (env) {
    for (const k of issued) expect(env.logs.text).not.toContain(k);
    await env.close();
  }
});

describe('revocation and rolling across instances', () => {
  it('a key revoked on one instance is refused by another within one second', async () => {
    const k = await cliKey({ preset: 'read_only' });
    // Warm the second instance's cache, and show it serves from it.
    await whoami(second.url, k.key).expect(200);
    const counter = countApiKeyQueries(s.ds);
    try {
      await whoami(second.url, k.key).expect(200);
      expect(counter.n).toBe(0);
    } finally {
      counter.restore();
    }
    await request(env.url).delete(`/api/v1/auth/api-keys/${k.id}`).set('x-api-key', admin).expect(200);
    const revokedAt = Date.now();
    let status = 0;
    while (Date.now() - revokedAt < 1000) {
      status = (await whoami(second.url, k.key)).status;
      if (status === 401) break;
      await sleep(20);
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    const r = await whoami(second.url, k.key).expect(401);
    expect(r.body.error.code).toBe('INVALID_API_KEY');
  });

  it('a rolled key keeps the old secret for grace_seconds, then refuses it on every instance', async () => {
    const k = await cliKey({ preset: 'read_only' });
    await whoami(second.url, k.key).expect(200);
    const rolled = await request(env.url).post(`/api/v1/auth/api-keys/${k.id}/roll`).set('x-api-key', admin).send({ grace_seconds: 1 }).expect(200);
    const fresh = rolled.body.data.key as string;
    issued.push(fresh);
    expect(fresh).not.toBe(k.key);
    expect(rolled.body.data.id).toBe(k.id);
    expect(rolled.body.data.previous_secret_expires_at).not.toBeNull();
    for (const url of [env.url, second.url]) {
      await whoami(url, k.key).expect(200);
      const me = await whoami(url, fresh).expect(200);
      expect(me.body.data.key_id).toBe(k.id);
    }
    await sleep(1100);
    for (const url of [env.url, second.url]) {
      const r = await whoami(url, k.key).expect(401);
      expect(r.body.error.code).toBe('INVALID_API_KEY');
      await whoami(url, fresh).expect(200);
    }
  });

  it('grace_seconds 0 ends the old secret at once', async () => {
    const k = await cliKey({ preset: 'read_only' });
    await whoami(second.url, k.key).expect(200);
    const rolled = await request(second.url).post(`/api/v1/auth/api-keys/${k.id}/roll`).set('x-api-key', admin).send({ grace_seconds: 0 }).expect(200);
    issued.push(rolled.body.data.key);
    expect(rolled.body.data.previous_secret_expires_at).toBeNull();
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 1000 && status !== 401) {
      status = (await whoami(env.url, k.key)).status;
      if (status !== 401) await sleep(20);
    }
    expect(status).toBe(401);
    await whoami(second.url, k.key).expect(401);
    await whoami(env.url, rolled.body.data.key).expect(200);
    const bad = await request(env.url).post(`/api/v1/auth/api-keys/${k.id}/roll`).set('x-api-key', admin).send({ grace_seconds: -1 }).expect(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    const roll = (body: object) => request(env.url).post(`/api/v1/auth/api-keys/${k.id}/roll`).set('x-api-key', admin).send(body).expect(400);
    expect((await roll({ grace_seconds: '60' })).body.error).toMatchObject({ message: 'grace_seconds must be a number', details: { issues: [{ path: 'grace_seconds', message: 'grace_seconds must be a number' }] } });
    expect((await roll({ grace_seconds: 0, grace: 60 })).body.error).toMatchObject({ message: 'Unknown field "grace"', details: { issues: [{ path: 'grace', message: 'Unknown field "grace"' }] } });
    await whoami(env.url, rolled.body.data.key).expect(200);
  });

  it('a key with a flipped character is refused by checksum without a single store query', async () => {
    const k = await cliKey({ preset: 'read_only' });
    const i = 10;
    const flipped = k.key.slice(0, i) + (k.key[i] === 'Q' ? 'R' : 'Q') + k.key.slice(i + 1);
    const unknownButWellFormed = generateApiKey(env.config.apiKeys.prefix);
    const counter = countApiKeyQueries(s.ds);
    try {
      for (const sent of [
        (r: Test) => r.set('Authorization', `Bearer ${flipped}`),
        (r: Test) => r.set('x-api-key', flipped),
      ]) {
        const res = await sent(request(env.url).get('/api/v1/auth/whoami')).expect(401);
        expect(res.body.error.code).toBe('INVALID_API_KEY');
      }
      await request(env.url).get(`/api/v1/auth/whoami?api-key=${flipped}`).expect(401);
      expect(counter.n).toBe(0);
      // The counter does count: a well-formed key nobody issued reaches PostgreSQL once (then the negative cache).
      await whoami(env.url, unknownButWellFormed).expect(401);
      await whoami(env.url, unknownButWellFormed).expect(401);
      expect(counter.n).toBe(1);
    } finally {
      counter.restore();
    }
    await whoami(env.url, k.key).expect(200);
  });
});

describe('keys act for their creator', () => {
  it('a removed member\'s keys are refused at once on every instance; a demoted admin\'s key loses admin reach at once', async () => {
    const { API_KEY_SCOPES } = await import('../src/apikeys/presets.js');
    const make = async (email: string, role: 'admin' | 'member') => {
      const { user, membership } = await s.accounts.createUser(CLI_ACTOR, { email, password: 'a long password', orgId, role });
      const principal = { kind: 'session' as const, orgId, userId: user.id, role: membership.role, scopes: API_KEY_SCOPES };
      const { key } = await s.apiKeys.create({ actor: { type: 'user', id: user.id }, principal }, orgId, { name: `${role} key`, preset: 'full_access' } as any);
      issued.push(key);
      return { user, key };
    };
    const leaver = await make('leaver@example.test', 'member');
    await whoami(env.url, leaver.key).expect(200);
    await whoami(second.url, leaver.key).expect(200); // both instances have it cached now
    await s.accounts.removeMember(CLI_ACTOR, orgId, leaver.user.id);
    await sleep(200);
    await whoami(env.url, leaver.key).expect(401);
    await whoami(second.url, leaver.key).expect(401);

    const admin2 = await make('admin2@example.test', 'admin');
    const other = await cliKey({ name: 'someone else', preset: 'read_only' });
    const get = (url: string) => request(url).get(`/api/v1/auth/api-keys/${other.id}`).set('x-api-key', admin2.key);
    const seen = await get(second.url).expect(200);
    expect(seen.body.data.masked).toBe(false); // an admin sees and manages every key
    await s.accounts.changeRole(CLI_ACTOR, orgId, admin2.user.id, 'member');
    await sleep(200);
    const after = await get(second.url);
    expect(after.status === 404 || after.body.data?.masked === true).toBe(true);
    await request(second.url).delete(`/api/v1/auth/api-keys/${other.id}`).set('x-api-key', admin2.key).expect((r) => expect([403, 404]).toContain(r.status));
  });
});
