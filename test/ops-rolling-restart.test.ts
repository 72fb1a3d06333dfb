import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { createClient, createOrg, type TestClient } from './support/oauth.js';
import { freePort } from './support/process.js';
import { createKey } from './ratelimit-support.js';
import { introspectionRequest, keepAliveLoad, sharedEnv, sleep, spawnFlowgate, type FlowgateProcess } from './support/drain-load.js';

// A rolling restart of two instances behind HAProxy (Debian's package), health-checked through
// /readyz, with no layer-7 retries configured: the keep-alive clients must not see a single failure.
let env: TestEnv;
let rs: TestClient;
let apiKey: string;
let haproxy: ChildProcess | undefined;
const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-haproxy-'));
const running = new Set<FlowgateProcess>();

beforeAll(async () => {
  env = await startTestServer();
  const orgId = await createOrg(env);
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  apiKey = (await createKey(env, orgId)).key;
});
afterAll(async () => {
  haproxy?.kill('SIGKILL');
  for (const c of running) await c.stop('SIGKILL');
  await env?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function instance(port: number): Promise<FlowgateProcess> {
  const p = await spawnFlowgate(sharedEnv(env, { PORT: String(port), SHUTDOWN_DELAY_MS: '4000' }));
  running.add(p);
  await p.ready();
  return p;
}

/** HAProxy's own view of a server, from its stats socket-less CSV page. */
async function serverStatus(statsPort: number, name: string): Promise<string> {
  const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
  const row = csv.split('\n').find((l) => l.startsWith(`flowgate,${name},`));
  return row?.split(',')[17] ?? 'missing';
}

async function until(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('rolling restart behind HAProxy', () => {
  it('restarts two instances one at a time under keep-alive load with zero failed requests', async () => {
    const [portA, portB, front, stats] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 2000',
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 30s',
        '  timeout server 30s',
        // A probe under load may take longer than the check interval; without this, `inter` bounds it.
        '  timeout check 5s',
        '  option http-keep-alive',
        // Connection-level retries only (a refused connect goes to the other server); no retry-on.
        '  retries 2',
        '  option redispatch',
        `frontend stats`,
        `  bind 127.0.0.1:${stats}`,
        '  stats enable',
        '  stats uri /stats',
        'frontend fe',
        `  bind 127.0.0.1:${front}`,
        '  default_backend flowgate',
        'backend flowgate',
        '  balance roundrobin',
        '  option httpchk GET /readyz',
        '  http-check expect status 200',
        '  default-server inter 400ms fall 2 rise 2',
        `  server a 127.0.0.1:${portA} check`,
        `  server b 127.0.0.1:${portB} check`,
        '',
      ].join('\n'),
    );
    let a = await instance(portA);
    let b = await instance(portB);
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    await until('HAProxy to see both instances up', async () => {
      try {
        return (await serverStatus(stats, 'a')) === 'UP' && (await serverStatus(stats, 'b')) === 'UP';
      } catch {
        return false;
      }
    });

    const load = keepAliveLoad({
      url: `http://127.0.0.1:${front}`,
      connections: 32,
      request: introspectionRequest(rs.clientId, rs.clientSecret!, apiKey),
      check: (body) => JSON.parse(body).active === true,
    });
    await sleep(1000);
    for (const [name, port] of [['a', portA], ['b', portB]] as const) {
      const old = name === 'a' ? a : b;
      old.signal('SIGTERM');
      expect(await old.exited).toEqual({ code: 0, signal: null });
      running.delete(old);
      const fresh = await instance(port);
      if (name === 'a') a = fresh;
      else b = fresh;
      await until(`HAProxy to see ${name} up again`, async () => (await serverStatus(stats, name)) === 'UP');
      await sleep(500);
    }
    load.stop();
    const result = await load.finish();
    expect(result.failures).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(200);
  }, 240_000);
});
