import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { basicAuth, createClient, tokenRequest } from './support/oauth.js';
import { projectRoot, StartedProcess, freePort } from './support/process.js';
import { spawn } from 'node:child_process';
import { sharedEnv } from './support/drain-load.js';

// The image's contract without a container runtime: the Dockerfile's stages ship compiled JavaScript
// and production dependencies only and run `node` as an unprivileged user, and a directory holding
// exactly what the runtime stage copies (dist/, config/, package.json, production node_modules)
// starts and serves. (The image itself is built with podman where a base image can be had:
// docs/operations.md, "Image".)
const dockerfile = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8');
const stages = dockerfile.split(/^FROM /m).slice(1).map((s) => 'FROM ' + s);
const dir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-image-'));
let env: TestEnv;
let proc: StartedProcess | undefined;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => {
  await proc?.stop('SIGKILL');
  await env?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the image', () => {
  it('builds in one stage and runs from another that holds no compiler, package manager or devDependency', () => {
    expect(stages).toHaveLength(2);
    const [build, runtime] = stages;
    expect(build).toMatch(/^FROM \$\{NODE_IMAGE\} AS build/);
    expect(build).toMatch(/RUN npm ci\b/);
    expect(build).toMatch(/node scripts\/build\.mjs/);
    expect(build).toMatch(/npm prune --omit=dev/);
    expect(runtime).toMatch(/^FROM scratch AS runtime/);
    // Only the prepared root, the compiled code, production modules and configuration reach it.
    const copies = [...runtime.matchAll(/^COPY (.*)$/gm)].map((m) => m[1]);
    expect(copies).toEqual([
      '--from=build /runtime/ /',
      '--from=build /src/node_modules ./node_modules',
      '--from=build /src/packages/sdk/package.json ./packages/sdk/package.json',
      '--from=build /src/packages/sdk/dist ./packages/sdk/dist',
      '--from=build /src/dist ./dist',
      'package.json ./',
      'config ./config',
    ]);
    expect(runtime).not.toMatch(/COPY[^\n]*\bsrc\b(?!\/)/);
    expect(runtime).not.toMatch(/\bnpm\b(?!.*#)|tsx/);
    expect(runtime).toMatch(/^USER 10001:10001$/m);
    expect(runtime).toMatch(/^CMD \["node", "dist\/src\/main\.js"\]$/m);
    expect(runtime).toMatch(/^ENV [\s\S]*NODE_ENV=production/m);
    // /metrics has its own port, exposed for the internal network (never published by compose).
    expect(runtime).toMatch(/^EXPOSE 3000 9464$/m);
    const compose = readFileSync(path.join(projectRoot, 'docker-compose.yml'), 'utf8');
    expect(compose).not.toMatch(/9464:9464|"9464:/);
    expect(compose.match(/restart: unless-stopped/g)?.length).toBe(3);
    expect(compose).toMatch(/COOKIE_SECRETS_FILE: \/run\/secrets\/cookie_secrets/);
    expect(compose).toMatch(/API_KEY_PEPPER_FILE: \/run\/secrets\/api_key_pepper/);
    expect(compose).not.toMatch(/COOKIE_SECRETS: \$|API_KEY_PEPPER: \$/);
    expect(compose.match(/mem_limit:/g)?.length).toBe(3);
  });

  it('the compiled server starts and serves with production dependencies only', async () => {
    // What the runtime stage holds: dist/, config/, package.json and the production dependency tree.
    for (const p of ['dist', 'config', 'package.json']) cpSync(path.join(projectRoot, p), path.join(dir, p), { recursive: true });
    const prod = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: projectRoot, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
      .split('\n')
      .filter((p) => p.startsWith(path.join(projectRoot, 'node_modules') + path.sep));
    // Without the embedded database engine: with DATABASE_URL set it must not even be imported.
    const embedded = /node_modules\/(@electric-sql\/pglite|typeorm-pglite)$/;
    for (const p of prod) if (!embedded.test(p)) cpSync(p, path.join(dir, path.relative(projectRoot, p)), { recursive: true, dereference: true });
    // The workspace package the server imports, compiled, linked as npm links it.
    for (const f of ['package.json', 'dist']) cpSync(path.join(projectRoot, 'packages/sdk', f), path.join(dir, 'packages/sdk', f), { recursive: true });
    rmSync(path.join(dir, 'node_modules/@flowgate/sdk'), { recursive: true, force: true });
    mkdirSync(path.join(dir, 'node_modules/@flowgate'), { recursive: true });
    symlinkSync('../../packages/sdk', path.join(dir, 'node_modules/@flowgate/sdk'));
    for (const dev of ['tsx', 'typescript', 'vitest', 'node', 'autocannon']) expect(existsSync(path.join(dir, 'node_modules', dev))).toBe(false);
    expect(existsSync(path.join(dir, 'node_modules/prom-client'))).toBe(true);

    const port = await freePort();
    const child = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...sharedEnv(env, { NODE_ENV: 'production', PORT: String(port), ISSUER: `http://127.0.0.1:${port}`, METRICS_PORT: '0', LOG_LEVEL: 'info' }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc = new StartedProcess(child);
    await proc.waitFor(/"msg":"Flowgate listening"/, 90_000);
    const url = `http://127.0.0.1:${port}`;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const client = await createClient(env, { grantTypes: ['client_credentials'], redirectUris: [] });
    const token = await tokenRequest({ ...env, url } as TestEnv, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret!) });
    expect(token.status).toBe(200);
    expect(await proc.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 180_000);
});
