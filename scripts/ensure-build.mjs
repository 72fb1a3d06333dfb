#!/usr/bin/env node
// Runs before `npm start`: builds dist/ when it is missing or older than the sources, so a fresh
// clone (`npm ci && npm start`) and an edited checkout both start what the sources say. A build in
// the image (or `npm run build`) leaves nothing to do here. Concurrent starts wait for one build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist/.build-stamp');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}
const stale = () => {
  if (!existsSync(stamp)) return true;
  // No sources (an image that ships dist/ only): nothing to compare with.
  if (!existsSync(path.join(root, 'src'))) return false;
  const built = statSync(stamp).mtimeMs;
  return ['src', 'migrations'].some((d) => existsSync(path.join(root, d)) && newest(path.join(root, d)) > built) || ['tsconfig.json', 'package.json'].some((f) => statSync(path.join(root, f)).mtimeMs > built);
};

if (stale()) {
  const lock = path.join(root, '.build.lock');
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (stale()) {
      if (!existsSync(path.join(root, 'node_modules/typescript'))) {
        process.stderr.write('dist/ is missing or out of date and TypeScript is not installed: run `npm ci && npm run build`\n');
        process.exit(1);
      }
      const r = spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status !== 0) process.exit(r.status ?? 1);
    }
  } finally {
    try {
      rmdirSync(lock);
    } catch {}
  }
}
