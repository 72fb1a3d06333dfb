/**
 * The embedded database has one owner. With `npm start` running on the embedded default, every CLI
 * write, a second `npm start` and `npm run example` stop with exit code 2 and a message naming the
 * process that holds ./data and what to do instead; nothing they tried is written. With the server
 * stopped, a CLI write persists and the server sees it when it starts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, npmStart, projectRoot, StartedProcess } from './support/process.js';
import { Browser, parseForms } from './support/oauth.js';

type Started = StartedProcess;

const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-owner-'));
const env = { DATA_DIR: path.join(dir, 'data'), KEYS_DIR: path.join(dir, 'keys'), NODE_ENV: 'development', LOG_LEVEL: 'info' };
const running: Started[] = [];

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The real CLI in its own process, as a user runs it. */
async function cli(...args: string[]): Promise<{ code: number | null; out: any; stderr: string }> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'PORT', 'ISSUER']) delete base[k];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--json'], { cwd: projectRoot, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = new StartedProcess(child);
  const { code } = await p.exited;
  const text = p.stdout.trim();
  return { code, out: text ? JSON.parse(text.split('\n').pop()!) : undefined, stderr: p.stderr };
}

async function start(port: number): Promise<Started> {
  const p = npmStart({ ...env, PORT: String(port) });
  running.push(p);
  return p;
}

describe('one owner of the embedded database', () => {
  it('refuses every other opener with exit 2 while `npm start` runs; writes made with the server stopped persist and are seen', async () => {
    const port = await freePort();
    const server = await start(port);
    // stdout is a pipe here: the first start's credentials are in a 0600 file the log names.
    await server.waitFor(/"msg":"first start: [^"]*"/, 180_000);
    const credentials = readFileSync(String(server.logs().find((l) => String(l.msg).startsWith('first start:'))!.file), 'utf8');
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 50 && (await fetch(`${url}/healthz`).then((r) => r.status, () => 0)) !== 200; i++) await new Promise((r) => setTimeout(r, 200));
    const devOrg = (credentials.match(/organization\s+Development \(([0-9a-f-]{36})\)/) ?? [])[1];
    expect(devOrg).toBeDefined();

    // Every kind of CLI write is refused, naming the holder and the way out; so are a second server
    // on another port and the example (all at once: each is a process start).
    const examplePort = await freePort();
    const base: NodeJS.ProcessEnv = { ...process.env };
    delete base.DATABASE_URL;
    delete base.REDIS_URL;
    const example = new StartedProcess(
      spawn(process.execPath, ['--import', 'tsx', 'examples/workflow-service/start.ts'], {
        cwd: projectRoot,
        env: { ...base, ...env, PORT: String(await freePort()), EXAMPLE_PORT: String(examplePort) },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    running.push(example);
    const second = await start(await freePort());
    const writes = [
      ['orgs', 'create', '--name', 'Refused'],
      ['api-keys', 'create', '--org', devOrg!, '--name', 'refused', '--preset', 'full_access'],
      ['keys', 'rotate'],
    ];
    const results = await Promise.all(writes.map((args) => cli(...args)));
    results.forEach((r, i) => {
      expect(r.code, writes[i].join(' ')).toBe(2);
      expect(r.out.success).toBe(false);
      expect(r.out.error.code).toBe('DATABASE_IN_USE');
      expect(r.out.error.message).toMatch(/in use by process \d+ \(the Flowgate server \(npm start\)/);
      expect(r.out.error.message).toContain('/docs/api');
      expect(r.out.error.message).toContain('DATABASE_URL');
    });
    expect((await second.exited).code).toBe(2);
    expect(second.stderr).toMatch(/in use by process \d+/);
    expect((await example.exited).code).toBe(2);
    expect(example.stderr).toMatch(/in use by process \d+/);

    // The first server is unharmed, and the documented way to the first admin credential works on it:
    // sign in to the dashboard with the first-start password, create a Full access key.
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const password = (credentials.match(/password\s+(\S+)/) ?? [])[1]!;
    const b = new Browser();
    const login = parseForms(await (await b.get(`${url}/dashboard`)).text())[0];
    expect((await b.postForm(new URL(login.action, url), { csrf: login.fields.csrf, email: 'admin@flowgate.local', password })).status).toBe(302);
    const newKey = parseForms(await (await b.get(`${url}/dashboard/orgs/${devOrg}/api-keys/new`)).text()).find((f) => f.action.endsWith('/api-keys/new'))!;
    const created = await b.postForm(new URL(newKey.action, url), { csrf: newKey.fields.csrf, name: 'Admin automation', permissions: 'full_access', expiration: 'never' });
    expect(created.status).toBe(201);
    const adminKey = /id="secret-value"[^>]*>([^<]+)</.exec(await created.text())![1];
    const members = await fetch(`${url}/api/v1/members`, { headers: { 'x-api-key': adminKey } });
    expect(members.status).toBe(200);
    expect(((await members.json()) as { data: { email: string; role: string }[] }).data).toEqual([expect.objectContaining({ email: 'admin@flowgate.local', role: 'owner' })]);
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    // Server stopped: the CLI owns the database, its write persists (the refused ones never opened it)...
    const key = await cli('api-keys', 'create', '--org', devOrg!, '--name', 'made offline', '--preset', 'full_access');
    expect(key.code).toBe(0);

    // ...and the server sees it as soon as it starts.
    const again = await start(port);
    await again.waitFor(/Flowgate listening/);
    for (let i = 0; i < 50 && (await fetch(`${url}/healthz`).then((r) => r.status, () => 0)) !== 200; i++) await new Promise((r) => setTimeout(r, 200));
    const me = await fetch(`${url}/api/v1/organization`, { headers: { 'x-api-key': key.out.key } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { data: { id: string } }).data.id).toBe(devOrg);
    expect(await again.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 240_000);
});
