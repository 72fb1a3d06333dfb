import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from './process.js';

/**
 * Vitest global setup: brings dist/ up to date once before any test file runs, so tests that start
 * Flowgate the way users do (`npm start`, compiled JavaScript) run the current sources and never wait
 * for a build inside a test's time limit.
 */
export default function setup(): void {
  const r = spawnSync(process.execPath, [path.join(projectRoot, 'scripts/ensure-build.mjs')], { stdio: 'inherit', cwd: projectRoot });
  if (r.status !== 0) throw new Error('building dist/ failed');
}
