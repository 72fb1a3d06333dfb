#!/usr/bin/env node
// Compiles the server to dist/ (tsc, tsconfig.build.json) and copies the files it reads at run time
// (templates, static assets) beside the compiled code. `npm start` and the image run dist/.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (r.status !== 0) process.exit(r.status ?? 1);
// Files modules read relative to themselves: templates, static assets, and package.json (its
// version), which dist/src/<folder>/ finds two levels up exactly as src/<folder>/ does.
for (const dir of ['src/views', 'src/static']) cpSync(path.join(root, dir), path.join(root, 'dist', dir), { recursive: true });
cpSync(path.join(root, 'package.json'), path.join(root, 'dist/package.json'));
mkdirSync(path.join(root, 'dist'), { recursive: true });
writeFileSync(path.join(root, 'dist/.build-stamp'), `${new Date().toISOString()}\n`);
