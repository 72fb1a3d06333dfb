// `npm run bench`: Flowgate's hot paths against two baselines measured in the same run:
// - ceiling: bare Koa parsing the same form body and answering fixed JSON;
// - peer: bare oidc-provider (in-memory adapter) answering its own introspection / client_credentials.
// Each server runs in its own process; autocannon drives load from this process.
// Machines here differ up to 4x between sessions: compare the ratios, not the absolute figures.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import autocannon from 'autocannon';
import { importJWK, SignJWT, type JWK } from 'jose';
import { randomBytes } from 'node:crypto';
import { JWT_BEARER } from '../src/oauth/grants/jwt-bearer.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

const children: ChildProcess[] = [];
async function startChild(script: string, env: Record<string, string> = {}): Promise<any> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, script)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  children.push(child);
  const rl = readline.createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    // oidc-provider prints its notices on stdout, and Flowgate its log lines: the data line is the
    // JSON object that names the server's url and nothing else.
    rl.on('line', (line) => {
      if (line.startsWith('{') && line.includes('"url"') && !line.includes('"level"')) resolve(JSON.parse(line));
    });
  });
}

/** BENCH_ONLY=regex runs only the matching Flowgate scenarios (the baselines always run). */
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const SKIPPED: Row = { name: 'skipped', rps: 0, p50: 0, p99: 0, errors: 0, non2xx: 0 };

async function load(name: string, opts: autocannon.Options): Promise<Row> {
  if (ONLY && name.startsWith('flowgate') && !ONLY.test(name)) return { ...SKIPPED, name };
  if (WARMUP > 0) await autocannon({ ...opts, duration: WARMUP, connections: CONNECTIONS });
  const r = await autocannon({ ...opts, duration: DURATION, connections: CONNECTIONS });
  const row = { name, rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
  process.stderr.write(`  ${name.padEnd(44)} ${String(row.rps).padStart(7)} req/s  p50 ${row.p50} ms  p99 ${row.p99} ms${row.non2xx || row.errors ? `  (non-2xx ${row.non2xx}, errors ${row.errors})` : ''}\n`);
  return row;
}

const form = (body: Record<string, string>) => new URLSearchParams(body).toString();
const formHeaders = (authorization?: string) => ({ 'content-type': 'application/x-www-form-urlencoded', ...(authorization && { authorization }) });

async function main() {
  process.stderr.write(`bench: ${DURATION}s per scenario, ${CONNECTIONS} connections, one server process each\n`);
  // A collector that accepts and drops OTLP exports, for the same server with tracing on.
  const sink = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')));
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const otlp = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;
  const [koa, peer, fg, traced] = await Promise.all([
    startChild('baseline-koa.ts'),
    startChild('baseline-oidc.ts'),
    startChild('flowgate-server.ts'),
    startChild('flowgate-server.ts', { BENCH_OTLP_ENDPOINT: otlp }),
  ]);
  const rows: Row[] = [];
  const introspect = (url: string, auth: string, token: string, extra: Record<string, string> = {}) => ({
    url: `${url}/token/introspection`,
    method: 'POST' as const,
    headers: formHeaders(auth),
    body: form({ token, ...extra }),
  });

  rows.push(await load('ceiling: bare Koa form parse + fixed JSON', { url: koa.url, method: 'POST', headers: formHeaders(), body: form({ token: 'x'.repeat(43) }) }));
  rows.push(await load('peer: oidc-provider introspection (memory)', introspect(peer.url, peer.rsAuth, peer.token)));
  rows.push(await load('peer: oidc-provider client_credentials', { url: `${peer.url}/token`, method: 'POST', headers: formHeaders(peer.appAuth), body: form({ grant_type: 'client_credentials', scope: 'workflows:read' }) }));
  rows.push(await load('flowgate: introspect opaque access token', introspect(fg.url, fg.rsAuth, fg.opaqueToken)));
  rows.push(await load('flowgate: introspect JWT access token', introspect(fg.url, fg.rsAuth, fg.jwtToken)));
  rows.push(await load('flowgate: introspect API key', introspect(fg.url, fg.rsAuth, fg.apiKey)));
  rows.push(await load('flowgate: introspect service JWT', introspect(fg.url, fg.rsAuth, fg.serviceJwt)));
  // Issue 5: the same API-key introspection with the rate-limit check (one Redis round trip).
  rows.push(await load('flowgate: introspect API key + rate limit', introspect(fg.url, fg.rsAuth, fg.apiKey, { ratelimit_category: 'read' })));
  rows.push(await load('flowgate: client_credentials (Redis)', { url: `${fg.url}/token`, method: 'POST', headers: formHeaders(fg.appAuth), body: form({ grant_type: 'client_credentials', scope: 'workflows:read' }) }));
  // OpenTelemetry on (every request sampled, spans exported in batches to a local collector).
  rows.push(await load('flowgate: introspect API key, tracing on', introspect(traced.url, traced.rsAuth, traced.apiKey)));
  rows.push(await load('flowgate: client_credentials, tracing on', { url: `${traced.url}/token`, method: 'POST', headers: formHeaders(traced.appAuth), body: form({ grant_type: 'client_credentials', scope: 'workflows:read' }) }));

  // JWT-bearer assertions are single-use: sign enough of them up front, outside the measurement.
  const key = await importJWK(fg.svcPrivateJwk as JWK, 'ES256');
  const n = ONLY && !ONLY.test('flowgate: jwt-bearer grant (Redis)') ? 0 : Math.max(20_000, (DURATION + WARMUP) * 8000);
  const assertions: string[] = [];
  for (let i = 0; i < n; i++) {
    assertions.push(
      await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
        .setIssuer(fg.svcClientId)
        .setSubject(fg.svcClientId)
        .setAudience(fg.issuer)
        .setJti(randomBytes(12).toString('base64url'))
        .setExpirationTime('10m')
        .sign(key),
    );
  }
  let next = 0;
  rows.push(
    await load('flowgate: jwt-bearer grant (Redis)', {
      url: `${fg.url}/token`,
      method: 'POST',
      headers: formHeaders(),
      requests: [{ setupRequest: (req) => ({ ...req, body: form({ grant_type: JWT_BEARER, assertion: assertions[next++ % assertions.length], scope: 'workflows:read' }) }) }],
    }),
  );

  const ceiling = rows[0];
  const peerIntrospect = rows[1];
  const peerToken = rows[2];
  const plainKey = rows.find((r) => r.name === 'flowgate: introspect API key') ?? SKIPPED;
  const table = rows.filter((r) => r.rps > 0).map((r) => {
    const issuance = /client_credentials|jwt-bearer/.test(r.name);
    const peerRow = issuance ? peerToken : peerIntrospect;
    return {
      ...r,
      vs_ceiling: +(r.rps / ceiling.rps).toFixed(2),
      vs_peer: +(r.rps / peerRow.rps).toFixed(2),
      peer: peerRow.name,
      ...(r.name.endsWith('+ rate limit') && plainKey.rps > 0 && { vs_without_rate_limit: +(r.rps / plainKey.rps).toFixed(2) }),
      ...(r.name.endsWith('tracing on') && { vs_tracing_off: +(r.rps / (rows.find((x) => x.name === r.name.replace(', tracing on', r.name.includes('introspect') ? '' : ' (Redis)'))?.rps ?? NaN)).toFixed(2) }),
    };
  });
  process.stdout.write('\n| scenario | req/s | p50 ms | p99 ms | × ceiling | × peer |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of table) process.stdout.write(`| ${r.name} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.vs_ceiling} | ${r.vs_peer} |\n`);
  for (const r of table) if ('vs_tracing_off' in r) process.stdout.write(`tracing cost: ${r.name} runs at ${(r as any).vs_tracing_off}x the rate with tracing off\n`);
  const rl = table.find((r) => 'vs_without_rate_limit' in r);
  if (rl) process.stdout.write(`\nrate-limit check cost: API-key introspection with it runs at ${(rl as any).vs_without_rate_limit}x the rate without it\n`);
  const out = {
    when: new Date().toISOString(),
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    settings: { duration_s: DURATION, connections: CONNECTIONS, warmup_s: WARMUP },
    rows: table,
  };
  // A partial run (BENCH_ONLY) does not overwrite the full table.
  const file = ONLY ? 'results.partial.json' : 'results.json';
  writeFileSync(path.join(here, file), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\nwrote bench/${file}\n`);
}

main()
  .catch((err) => {
    process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    // The collector stays up while the traced server flushes its last spans on SIGTERM.
    for (const c of children) c.kill('SIGTERM');
    setTimeout(() => process.exit(), 3000).unref();
  });
