// Runs `flowgate migrate` while holding a PostgreSQL advisory lock, so that replicas starting at once
// (a fresh install, a scale-up during an upgrade) never apply the same migration twice: the first
// applies them, the others wait for the lock and then find nothing pending. The lock lives in this
// script's own session: use a direct connection to the primary (DATABASE_URL of the init container),
// not PgBouncer in transaction mode, which would hand the unlock to another server connection.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const app = process.env.FLOWGATE_HOME ?? '/app';
const pg = createRequire(path.join(app, 'package.json'))('pg');
const LOCK = 'flowgate:migrations';

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [LOCK]);
  const r = spawnSync(process.execPath, [path.join(app, 'bin/flowgate.js'), 'migrate'], { stdio: 'inherit', cwd: app });
  process.exitCode = r.status ?? 1;
} finally {
  await client.end(); // ends the session: PostgreSQL releases the lock
}
