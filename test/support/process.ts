/**
 * Runs `npm start` as a child process, the way a user does, and watches its output. Used by the
 * embedded-mode and WORKERS smoke tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Settings a developer's shell or CI might export, removed so the child sees only what a test gives. */
const INHERITED = [
  'DATABASE_URL', 'REDIS_URL', 'REDIS_PREFIX', 'PORT', 'HOST', 'ISSUER', 'DATA_DIR', 'KEYS_DIR', 'WORKERS',
  'COOKIE_SECRETS', 'API_KEY_PEPPER', 'LOG_LEVEL', 'SEED_DEV_DATA', 'NODE_ENV', 'API_AUDIENCE',
];

export class StartedProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (c) => (this.stdout += c));
    child.stderr!.on('data', (c) => (this.stderr += c));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves once stdout matches, rejects when the process exits first or time runs out. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const m = this.stdout.match(pattern);
      if (m) return m;
      if (exited) throw new Error(`process exited before ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** JSON log lines written so far. */
  logs(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000) {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function npmStart(env: Record<string, string>): StartedProcess {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of INHERITED) delete base[name];
  const child = spawn('npm', ['start', '--silent'], {
    cwd: projectRoot,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new StartedProcess(child);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
    srv.on('error', reject);
  });
}
