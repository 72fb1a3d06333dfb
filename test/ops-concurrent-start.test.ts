import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_REDIS_URL } from './support/server.js';
import { spawnFlowgate, type FlowgateProcess } from './support/drain-load.js';

// Three instances started at the same moment on an empty database and an empty keys directory (a
// shared volume): migrations run once under the advisory lock, exactly one signing key set is
// created, and all three serve the same keys.
const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-concurrent-'));
let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
const procs: FlowgateProcess[] = [];
afterAll(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('concurrent first start', () => {
  it('three instances on an empty database and keys directory all start, migrate once and share one key set', async () => {
    db = await createTestDatabase();
    const keysDir = path.join(dir, 'keys');
    const common = {
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: `fgtest:${randomBytes(4).toString('hex')}:`,
      KEYS_DIR: keysDir,
      DATA_DIR: path.join(dir, 'data'),
      COOKIE_SECRETS: randomBytes(32).toString('base64url'),
      API_KEY_PEPPER: randomBytes(32).toString('base64url'),
      SEED_DEV_DATA: 'false',
    };
    for (let i = 0; i < 3; i++) procs.push(await spawnFlowgate(common));
    await Promise.all(procs.map((p) => p.ready()));

    const jwks = await Promise.all(procs.map(async (p) => (await fetch(`${p.url}/jwks`)).json() as Promise<{ keys: { kid: string }[] }>));
    const kids = jwks.map((j) => j.keys.map((k) => k.kid).sort().join(','));
    expect(new Set(kids).size).toBe(1);
    expect(jwks[0].keys).toHaveLength(2);
    // Exactly one instance generated (and said so); no candidate files were left behind.
    const generated = procs.filter((p) => p.logs().some((l) => l.msg === 'generated signing keys (ES256, RS256)'));
    expect(generated).toHaveLength(1);
    expect(readdirSync(keysDir)).toEqual(['jwks.private.json']);

    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const { rows } = await c.query('SELECT name, count(*)::int AS n FROM flowgate_migrations GROUP BY name');
    await c.end();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.n === 1)).toBe(true);

    for (const p of procs) expect((await fetch(`${p.url}/readyz`)).status).toBe(200);
    for (const p of procs) expect(await p.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 180_000);
});
