import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestEnv } from './support/server.js';
import { basicAuth, type TestClient } from './support/oauth.js';
import { CLI_ACTOR } from '../src/audit/service.js';

export async function introspect(env: TestEnv, rs: TestClient, token: string, extra: Record<string, string> = {}, url = env.url) {
  const res = await fetch(new URL('/token/introspection', url), {
    method: 'POST',
    headers: { authorization: basicAuth(rs.clientId, rs.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, ...extra }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

export async function createKey(env: TestEnv, orgId: string, input: Record<string, unknown> = {}) {
  return env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'k', preset: 'full_access', ...input } as any);
}

/** A private redis-server on a free port (the machine's shared Redis is never stopped). */
export class OwnRedis {
  private proc: ChildProcess | undefined;
  constructor(readonly port: number) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--bind', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('redis-server did not start')), 10_000);
      this.proc!.stdout!.on('data', (b: Buffer) => {
        if (b.toString().includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.proc!.once('exit', (code) => reject(new Error(`redis-server exited ${code}`)));
    });
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
    this.proc = undefined;
  }
}

export async function freePort(): Promise<number> {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
