import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { createClient, createOrg, type TestClient } from './support/oauth.js';
import { createKey } from './ratelimit-support.js';
import { introspectionRequest, keepAliveLoad, sharedEnv, sleep, spawnFlowgate, type FlowgateProcess } from './support/drain-load.js';

// SIGTERM under keep-alive load, the way a balancer's clients keep connections: every request must be
// answered, with no retry anywhere. The load stops sending new requests once /readyz turns unready (a
// balancer's health check); everything sent before that, including requests already sitting in a
// connection's socket buffer, must get its 200.
let env: TestEnv;
let rs: TestClient;
let apiKey: string;
const children: FlowgateProcess[] = [];

beforeAll(async () => {
  env = await startTestServer();
  const orgId = await createOrg(env);
  rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true });
  apiKey = (await createKey(env, orgId)).key;
});
afterAll(async () => {
  for (const c of children) await c.stop('SIGKILL');
  await env?.close();
});

async function sigtermUnderLoad(extra: Record<string, string>, opts: { pid1?: boolean } = {}) {
  const child = await spawnFlowgate(sharedEnv(env, { SHUTDOWN_DELAY_MS: '1500', ...extra }), opts);
  children.push(child);
  await child.ready();
  const load = keepAliveLoad({
    url: child.url,
    readyUrl: `${child.url}/readyz`,
    connections: 32,
    request: introspectionRequest(rs.clientId, rs.clientSecret!, apiKey),
    check: (body) => JSON.parse(body).active === true,
  });
  await sleep(1500);
  const beforeSignal = load.result.ok;
  load.markSignal();
  child.signal('SIGTERM');
  const result = await load.finish();
  const exit = await child.exited;
  return { result, exit, beforeSignal, child };
}

describe('drain on SIGTERM under keep-alive load', () => {
  it('one process: unready first, answers every request sent, closes keep-alive connections, exits 0', async () => {
    const { result, exit, beforeSignal, child } = await sigtermUnderLoad({});
    expect(result.failures).toEqual([]);
    expect(result.failed).toBe(0);
    expect(beforeSignal).toBeGreaterThan(50);
    // Requests kept being answered after the signal (the delay), and those answers told each client
    // to close its connection instead of the server dropping idle ones.
    expect(result.afterSignal).toBeGreaterThan(0);
    expect(result.closeHeaders).toBeGreaterThan(0);
    expect(exit).toEqual({ code: 0, signal: null });
    const msgs = child.logs().map((l) => l.msg);
    expect(msgs).toContain('draining: unready, still serving while balancers notice');
    expect(msgs).toContain('stopped');
  }, 120_000);

  it('WORKERS=2: the primary forwards the signal and every worker drains the same way', async () => {
    const { result, exit, child } = await sigtermUnderLoad({ WORKERS: '2' });
    expect(result.failures).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.afterSignal).toBeGreaterThan(0);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(child.logs().filter((l) => l.msg === 'stopped').map((l) => l.worker).sort()).toEqual([1, 2]);
  }, 120_000);

  it('as PID 1 (a container without an init): the signal reaches Flowgate and it drains the same way', async () => {
    const { result, exit, child } = await sigtermUnderLoad({}, { pid1: true });
    expect(result.failures).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.afterSignal).toBeGreaterThan(0);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(child.logs().map((l) => l.msg)).toContain('stopped');
  }, 120_000);
});
