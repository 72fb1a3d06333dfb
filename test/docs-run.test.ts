import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_REDIS_URL } from './support/server.js';
import { freePort, npmStart, projectRoot, type StartedProcess } from './support/process.js';

/**
 * The documentation runs. Every shell block in README.md, docs/ and the SDK's README is marked
 * either `runnable` or `norun` (deployment-specific, or a reference with placeholders); the runnable
 * ones run, in order, in one bash session, as a reader would paste them, against a Flowgate started
 * with `npm start` in a directory that looks like a fresh clone. A block marked `background` is a
 * long-running command (`npm run example`): it is started, waited for (`until="..."` in its output)
 * and stopped with SIGTERM at the end, through npm, which must exit 0.
 *
 * What the reader brings from outside the blocks: the demo client the first start printed
 * (CLIENT_ID, CLIENT_SECRET), and, since these run against PostgreSQL and Redis so that the CLI can
 * share them with the running server, DATABASE_URL, REDIS_URL and REDIS_PREFIX. Ports are free ones:
 * `localhost:3000` and `localhost:4000` in the blocks become them.
 */
const DOCUMENTS = ['README.md', 'docs/api-keys.md', 'docs/introspection.md', 'docs/rate-limits.md', 'docs/webhooks.md', 'docs/dashboard.md', 'packages/sdk/README.md'];
const SHELL = new Set(['sh', 'bash', 'shell', 'console']);

interface Block {
  file: string;
  line: number;
  code: string;
  runnable: boolean;
  background?: string;
}

function blocksOf(file: string): Block[] {
  const text = readFileSync(path.join(projectRoot, file), 'utf8');
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    if (!SHELL.has(open[1])) continue;
    const info = open[2];
    const until = /until="([^"]+)"/.exec(info)?.[1];
    blocks.push({
      file,
      line: start + 1,
      code: body.join('\n'),
      runnable: /\brunnable\b/.test(info),
      ...(/\bbackground\b/.test(info) && { background: until ?? '' }),
      ...(!/\b(runnable|norun)\b/.test(info) && { unmarked: true }),
    } as Block);
  }
  return blocks;
}

const all = DOCUMENTS.flatMap(blocksOf);

/** The README's `export CLIENT_ID=… CLIENT_SECRET=…` line, once the first start has written it. */
async function firstStartExport(file: string, p: StartedProcess, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = existsSync(file) ? readFileSync(file, 'utf8').match(/export CLIENT_ID=(\S+) CLIENT_SECRET=(\S+)/) : null;
    if (m) return m;
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`no first-start credentials in ${file}\nstdout:\n${p.stdout}\nstderr:\n${p.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('documentation blocks', () => {
  it('every shell block says whether it runs (runnable) or not (norun)', () => {
    const unmarked = all.filter((b) => (b as Block & { unmarked?: boolean }).unmarked).map((b) => `${b.file}:${b.line}`);
    expect(unmarked).toEqual([]);
  });
});

let clone: string;
let dataDir: string;
let flowgate: StartedProcess | undefined;
let dropDb: (() => Promise<void>) | undefined;
let env: Record<string, string>;
let port: number;
let examplePort: number;

beforeAll(async () => {
  // A directory that looks like a fresh clone: the repository's files, by symbolic link. What the
  // blocks write (key files) lands here, not in the repository.
  clone = mkdtempSync(path.join(os.tmpdir(), 'flowgate-docs-'));
  for (const entry of ['package.json', 'package-lock.json', 'node_modules', 'src', 'config', 'migrations', 'bin', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'dist', 'packages', 'examples']) {
    symlinkSync(path.join(projectRoot, entry), path.join(clone, entry));
  }
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-docs-data-'));
  const db = await createTestDatabase();
  dropDb = db.drop;
  port = await freePort();
  examplePort = await freePort();
  env = {
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: `fgdocs:${randomBytes(4).toString('hex')}:`,
    DATA_DIR: dataDir,
    KEYS_DIR: path.join(dataDir, 'keys'),
  };
  flowgate = npmStart({ ...env, PORT: String(port), LOG_LEVEL: 'warn' });
  // Not a terminal: the first start writes its credentials to a 0600 file in the data directory.
  const [, clientId, clientSecret] = await firstStartExport(path.join(dataDir, 'first-start-credentials.txt'), flowgate, 90_000);
  env.CLIENT_ID = clientId;
  env.CLIENT_SECRET = clientSecret;
  env.FLOWGATE_URL = `http://localhost:${port}`;
  env.EXAMPLE_PORT = String(examplePort);
}, 120_000);

afterAll(async () => {
  await flowgate?.stop();
  await dropDb?.();
  rmSync(dataDir, { recursive: true, force: true });
  if (clone) rmSync(clone, { recursive: true, force: true });
});

/** The session script: every runnable block, with markers naming it, ports mapped. */
function script(blocks: Block[]): string {
  const parts = [
    'set -euo pipefail',
    // A block that gets an HTTP error fails, with the body shown.
    // (-sS: no progress meter in the log; errors still shown.)
    'curl() { command curl -sS --fail-with-body "$@"; }',
    'BACKGROUND=()',
    'wait_output() { for _ in $(seq 1 600); do grep -qF -- "$2" "$1" && return 0; sleep 0.2; done; echo "timed out waiting for: $2" >&2; cat "$1" >&2; return 1; }',
  ];
  blocks.forEach((b, n) => {
    const code = b.code.replaceAll('localhost:3000', `localhost:${port}`).replaceAll('localhost:4000', `localhost:${examplePort}`);
    parts.push(`echo "::block ${b.file}:${b.line}" >&2`);
    if (b.background !== undefined) {
      parts.push(`( ${code}\n) > background-${n}.log 2>&1 &`, 'BACKGROUND+=($!)', `wait_output background-${n}.log ${JSON.stringify(b.background)}`, `cat background-${n}.log`);
    } else {
      parts.push(code);
    }
  });
  // Background commands stop on SIGTERM, through npm, with exit code 0.
  parts.push('echo "::stopping" >&2', 'for p in "${BACKGROUND[@]}"; do kill -TERM "$p"; code=0; wait "$p" || code=$?; echo "::background-exit $code"; done');
  return parts.join('\n');
}

describe('the documentation, run', () => {
  it('every runnable block succeeds, in order, against a started Flowgate', async () => {
    const runnable = all.filter((b) => b.runnable);
    expect(runnable.length).toBeGreaterThan(15);
    writeFileSync(path.join(clone, 'docs-session.sh'), script(runnable));
    const child = spawn('bash', ['docs-session.sh'], {
      cwd: clone,
      env: { PATH: `${path.join(projectRoot, 'node_modules/.bin')}:${process.env.PATH}`, HOME: process.env.HOME ?? clone, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const last = [...err.matchAll(/::block (\S+)/g)].at(-1)?.[1];
    expect(code, `failed in the block at ${last}\n--- stderr (tail)\n${err.slice(-4000)}\n--- stdout (tail)\n${out.slice(-3000)}`).toBe(0);
    // The README's walkthrough reached the end: a workflow run, read back through the example service.
    expect(out).toMatch(/"status":"completed"/);
    expect(out).toMatch(/::background-exit 0/);
    expect(out).not.toMatch(/::background-exit [1-9]/);
  }, 300_000);
});
