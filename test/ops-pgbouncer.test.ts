import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, PG_ADMIN_URL, startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, createClient, tokenRequest } from './support/oauth.js';
import { freePort } from './support/process.js';
import { createKey, introspect } from './ratelimit-support.js';
import { CLI_ACTOR } from '../src/audit/service.js';

// Flowgate behind PgBouncer (Debian's package) in transaction mode: every statement may run on a
// different server connection, so nothing may rely on session state (session advisory locks, SET,
// named prepared statements). Migrations, transactions and the hot path all go through it here.
const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-pgbouncer-'));
let bouncer: ChildProcess | undefined;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let env: TestEnv;
let second: Awaited<ReturnType<TestEnv['startInstance']>> | undefined;

async function listening(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('pgbouncer did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  const port = await freePort();
  const admin = new URL(PG_ADMIN_URL);
  const ini = path.join(dir, 'pgbouncer.ini');
  writeFileSync(path.join(dir, 'users.txt'), `"${admin.username}" ""\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=${admin.hostname} port=${admin.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      'default_pool_size = 4',
      'max_client_conn = 500',
      // Only what node-postgres sends by itself; Flowgate sends no other startup parameter here.
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  chmodSync(dir, 0o755);
  // PgBouncer refuses to run as root; Debian's package provides the postgres user.
  const asUser = process.getuid?.() === 0 ? ['-u', 'postgres'] : [];
  bouncer = spawn('pgbouncer', [...asUser, ini], { stdio: 'ignore' });
  await listening(port);
  const url = new URL(db.url);
  url.port = String(port);
  env = await startTestServer({ DATABASE_URL: url.toString(), DATABASE_PGBOUNCER: 'true', DATABASE_POOL_SIZE: '20' });
});
afterAll(async () => {
  await env?.close();
  bouncer?.kill('SIGTERM');
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('behind PgBouncer in transaction mode', () => {
  it('migrates, serves the hot path, issues tokens and runs transactions with more clients than server connections', async () => {
    // A second instance starts (migration lock through PgBouncer) while the first serves.
    second = await env.startInstance();
    const orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: 'Bouncer', plan: 'enterprise' })).id;
    const rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
    // 40 keys created (transactions with audit rows) and introspected at once, cold, on 4 server connections.
    const keys = await Promise.all(Array.from({ length: 40 }, () => createKey(env, orgId)));
    const answers = await Promise.all(keys.map((k, i) => introspect(env, rs, k.key, {}, i % 2 ? env.url : second!.url)));
    expect(answers.every((a) => a.status === 200 && a.body.active === true)).toBe(true);
    const token = await tokenRequest(env, { grant_type: 'client_credentials' }, { authorization: basicAuth(rs.clientId, rs.clientSecret!) });
    expect(token.status).toBe(200);
    // Revocation is a transaction too; it is seen at introspection.
    await env.server.services.apiKeys.revoke({ actor: CLI_ACTOR }, keys[0].apiKey.id);
    expect((await introspect(env, rs, keys[0].key)).body.active).toBe(false);
    expect(env.logs.text).not.toMatch(/prepared statement|unsupported startup parameter/i);
    const ready = await (await fetch(`${second.url}/readyz`)).json();
    expect(ready).toMatchObject({ status: 'ready' });
  }, 120_000);
});
