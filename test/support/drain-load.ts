/**
 * Production-shaped shutdown tests: Flowgate as its own process (compiled, `node dist/src/main.js`,
 * as the image runs it) and a keep-alive load that behaves like a balancer's clients: many
 * connections reused request after request, no retry of any kind, and new requests stop once the
 * target's /readyz says it is not ready (what a balancer's health check does).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { TestEnv } from './server.js';
import { freePort, projectRoot, StartedProcess } from './process.js';

/** The child's environment: the same database, Redis prefix, keys and secrets as a test server's. */
export function sharedEnv(env: TestEnv, extra: Record<string, string> = {}): Record<string, string> {
  const c = env.config;
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    DATABASE_URL: c.databaseUrl!,
    REDIS_URL: c.redisUrl!,
    REDIS_PREFIX: c.redisPrefix,
    KEYS_DIR: c.keysDir,
    DATA_DIR: c.dataDir,
    COOKIE_SECRETS: c.cookieSecrets.join(','),
    API_KEY_PEPPER: c.apiKeys.pepper,
    SEED_DEV_DATA: 'false',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** `node dist/src/main.js` with exactly `env` (plus PATH); `pid1` runs it as PID 1 of a new PID namespace. */
export async function spawnFlowgate(env: Record<string, string>, opts: { pid1?: boolean } = {}): Promise<FlowgateProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const full = { PATH: process.env.PATH ?? '', ISSUER: `http://127.0.0.1:${port}`, ...env, PORT: String(port) };
  const main = path.join(projectRoot, 'dist/src/main.js');
  // unshare --fork --pid: the child is PID 1 of its namespace, as in a container without an init.
  const child = opts.pid1
    ? spawn('unshare', ['--fork', '--pid', '--kill-child', process.execPath, main], { cwd: projectRoot, env: full, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [main], { cwd: projectRoot, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  return new FlowgateProcess(child, port, !!opts.pid1);
}

export class FlowgateProcess extends StartedProcess {
  constructor(
    child: ChildProcess,
    readonly port: number,
    private readonly pid1: boolean,
  ) {
    super(child);
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  /** The process Flowgate runs as (inside the namespace: its PID 1). */
  flowgatePid(): number {
    if (!this.pid1) return this.child.pid!;
    const children = readFileSync(`/proc/${this.child.pid}/task/${this.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return Number(children[0]);
  }
  async ready(timeoutMs = 90_000): Promise<void> {
    await this.waitFor(/"msg":"Flowgate listening"/, timeoutMs);
  }
  signal(sig: NodeJS.Signals = 'SIGTERM'): void {
    process.kill(this.flowgatePid(), sig);
  }
}

export interface LoadResult {
  ok: number;
  failed: number;
  failures: string[];
  /** Responses that told the client to close its connection (the drain at work). */
  closeHeaders: number;
  /** Requests answered after the signal was sent. */
  afterSignal: number;
  /** Distinct TCP connections the clients opened. */
  connections: number;
}

export interface LoadOptions {
  /** Where requests go (the instance, or a balancer in front of instances). */
  url: string;
  /** The health check that stops new requests (a balancer's view); omit to keep sending until stop(). */
  readyUrl?: string;
  connections: number;
  request: { method: 'GET' | 'POST'; path: string; headers?: Record<string, string>; body?: string };
  /** Extra check of a 200 answer's body (e.g. active: true). */
  check?: (body: string) => boolean;
}

/** Keep-alive load without retries. start() returns controls; finish() waits for every request. */
export function keepAliveLoad(o: LoadOptions) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections, keepAliveMsecs: 1000 });
  const sockets = new Set<unknown>();
  const r: LoadResult = { ok: 0, failed: 0, failures: [], closeHeaders: 0, afterSignal: 0, connections: 0 };
  let stopped = false;
  let signalledAt = Infinity;
  const target = new URL(o.url);

  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.request(
        { host: target.hostname, port: target.port, method: o.request.method, path: o.request.path, headers: { ...o.request.headers, ...(o.request.body && { 'content-length': Buffer.byteLength(o.request.body) }) }, agent },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (body += c));
          res.on('end', () => {
            if (res.headers.connection === 'close') r.closeHeaders++;
            if (res.statusCode === 200 && (!o.check || o.check(body))) {
              r.ok++;
              if (Date.now() >= signalledAt) r.afterSignal++;
            } else {
              r.failed++;
              if (r.failures.length < 10) r.failures.push(`${res.statusCode} ${body.slice(0, 200)}`);
            }
            resolve();
          });
          res.on('error', (err) => {
            r.failed++;
            if (r.failures.length < 10) r.failures.push(`response error ${err.message}`);
            resolve();
          });
        },
      );
      req.on('socket', (s) => {
        if (!sockets.has(s)) {
          sockets.add(s);
          r.connections++;
        }
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        r.failed++;
        if (r.failures.length < 10) r.failures.push(`request error ${err.code ?? err.message}`);
        resolve();
      });
      req.end(o.request.body);
    });

  const loops = Array.from({ length: o.connections }, async () => {
    while (!stopped) await one();
  });

  let poller: NodeJS.Timeout | undefined;
  if (o.readyUrl) {
    const url = o.readyUrl;
    // Like a balancer's health check (HAProxy's `fall 2`): two failed probes in a row take the target out.
    let failures = 0;
    const verdict = (ok: boolean) => {
      failures = ok ? 0 : failures + 1;
      if (failures >= 2) stopped = true;
    };
    poller = setInterval(() => {
      http
        .get(url, { agent: false }, (res) => {
          res.resume();
          verdict(res.statusCode === 200);
        })
        .on('error', () => verdict(false));
    }, 100);
  }

  return {
    result: r,
    markSignal() {
      signalledAt = Date.now();
    },
    stop() {
      stopped = true;
    },
    get stopped() {
      return stopped;
    },
    async finish(): Promise<LoadResult> {
      await Promise.all(loops);
      if (poller) clearInterval(poller);
      agent.destroy();
      return r;
    },
  };
}

/** An introspection request for `token` by a resource server with a client secret. */
export function introspectionRequest(clientId: string, clientSecret: string, token: string): LoadOptions['request'] {
  return {
    method: 'POST',
    path: '/token/introspection',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ token }).toString(),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
