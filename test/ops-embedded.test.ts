import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, npmStart, type StartedProcess } from './support/process.js';

// The zero-config default: `npm start` with no DATABASE_URL and no REDIS_URL runs on embedded PGlite
// and the in-process store, hands out the first-start sign-in once, and serves OAuth. stdout is a pipe
// here (a log collector, as in most deployments): the password and secret go to a 0600 file instead.
const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-embedded-'));
const env = { DATA_DIR: path.join(dir, 'data'), KEYS_DIR: path.join(dir, 'keys'), NODE_ENV: 'development', LOG_LEVEL: 'info' };
let running: StartedProcess | undefined;
let demo: { clientId: string; clientSecret: string } | undefined;

function clientCredentials(url: string, clientId: string, clientSecret: string) {
  return fetch(`${url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
}
afterAll(async () => {
  await running?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('npm start with no database or Redis URL', () => {
  it('boots embedded, prints the demo client once, issues a client_credentials token, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    running = npmStart({ ...env, PORT: String(port) });
    // The embedded engine starts slowly on a loaded 2-core machine: allow it.
    await running.waitFor(/"msg":"first start: the admin password and demo client secret are in the file named here \(mode 0600\)"/, 180_000);
    const notice = running.logs().find((l) => String(l.msg).startsWith('first start:'))!;
    const file = String(notice.file);
    expect(file).toBe(path.join(env.DATA_DIR, 'first-start-credentials.txt'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    const [, clientId, clientSecret] = text.match(/client_id (\S+)\s+client_secret (\S+)/)!;
    const [, password] = text.match(/password\s+(\S{12,})/)!;
    expect(text).toMatch(/admin user\s+admin@flowgate\.local/);
    demo = { clientId, clientSecret };
    await running.waitFor(/"msg":"Flowgate listening"/);
    // The log (stdout) never holds the secrets.
    expect(running.stdout).not.toContain(password);
    expect(running.stdout).not.toContain(clientSecret);

    const mode = running.logs().find((l) => String(l.msg).startsWith('single-process development mode'));
    expect(mode).toMatchObject({ database: `embedded PGlite (${env.DATA_DIR})`, store: 'in-process' });

    const discovery = await fetch(`${url}/.well-known/openid-configuration`);
    expect(discovery.status).toBe(200);
    const meta = (await discovery.json()) as { issuer: string; token_endpoint: string };
    expect(meta.issuer).toBe(`http://localhost:${port}`);

    const token = await clientCredentials(url, clientId, clientSecret);
    expect(token.status).toBe(200);
    const body = (await token.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(body.access_token).toEqual(expect.any(String));
    expect(body.token_type).toBe('Bearer');

    const ready = await fetch(`${url}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: 'up', memory_store: 'up' } });

    expect(await running.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(running.logs().some((l) => l.msg === 'shutting down: finishing in-flight requests')).toBe(true);
  }, 240_000);

  it('does not print the credentials again on a second start with the same data directory', async () => {
    const port = await freePort();
    running = npmStart({ ...env, PORT: String(port) });
    await running.waitFor(/"msg":"Flowgate listening"/, 180_000);
    expect(running.stdout).not.toMatch(/client_secret|password|first start/);
    // The data from the first start is still there: the demo client still gets tokens.
    expect(demo).toBeDefined();
    const token = await clientCredentials(`http://127.0.0.1:${port}`, demo!.clientId, demo!.clientSecret);
    expect(token.status).toBe(200);
    expect(await running.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 240_000);
});
