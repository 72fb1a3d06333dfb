/**
 * Vitest global setup: the server and the tests import @flowgate/sdk as installed, i.e. its compiled
 * dist/. Rebuild it when a source file is newer than the build, so a test never runs stale SDK code.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './process.js';

const sdk = path.join(projectRoot, 'packages/sdk');

function newest(dir: string, ext: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, ext));
    else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  let built = 0;
  try {
    built = newest(path.join(sdk, 'dist'), '.js');
  } catch {
    // not built yet
  }
  const sources = Math.max(newest(path.join(sdk, 'src'), '.ts'), statSync(path.join(sdk, 'tsconfig.build.json')).mtimeMs);
  if (built >= sources) return;
  execFileSync(path.join(projectRoot, 'node_modules/.bin/tsc'), ['-p', path.join(sdk, 'tsconfig.build.json')], { stdio: 'inherit' });
}
