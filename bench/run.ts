// `npm run bench`: Flowgate's hot paths against two baselines measured in the same run:
// - ceiling: bare Koa parsing the same form body and answering fixed JSON;
// - peer: bare oidc-provider (in-memory adapter) answering its own introspection / client_credentials.
// Each server runs in its own process; autocannon drives load from this process. Flowgate runs at its
// default settings (LOG_LEVEL=info, rate limiting on), compiled, as `npm start` runs it.
// Machines here differ up to 4x between sessions: compare the ratios, not the absolute figures.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import autocannon from 'autocannon';
import { importJWK, SignJWT, type JWK } from 'jose';
import { randomBytes } from 'node:crypto';
import { JWT_BEARER } from '../src/oauth/grants/jwt-bearer.js';
import { seedColdKeys } from './cold-keys.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const COLD_KEYS = Number(process.env.BENCH_COLD_KEYS ?? 20_000);

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

const children: ChildProcess[] = [];
/** What the memory-measured server reports on SIGUSR2 (its stderr), waited for in order. */
const memoryReports: ((r: { afterGc?: { heapUsed: number } }) => void)[] = [];

async function startChild(script: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<any> {
  // Node 24 runs these files itself (type stripping): no transpiler in the measured processes.
  const reports = nodeArgs.includes('--expose-gc');
  const child = spawn(process.execPath, [...nodeArgs, path.join(here, script)], { stdio: ['ignore', 'pipe', reports ? 'pipe' : 'inherit'], env: { ...process.env, ...env } });
  children.push(child);
  if (reports) {
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.startsWith('{"memory"')) memoryReports.shift()?.(JSON.parse(line));
      else process.stderr.write(`${line}\n`);
    });
  }
  const rl = readline.createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    // oidc-provider prints its notices on stdout, and Flowgate its log lines: the data line is the
    // JSON object that names the server's url and nothing else.
    rl.on('line', (line) => {
      if (line.startsWith('{') && line.includes('"url"') && !line.includes('"level"')) {
        // From here on the server's log lines are drained unread: splitting them into lines in this
        // process would take CPU from the load generator.
        rl.close();
        child.stdout!.resume();
        resolve(JSON.parse(line));
      }
    });
  });
}

/** BENCH_ONLY=regex runs only the matching Flowgate scenarios (the baselines always run). */
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const SKIPPED: Row = { name: 'skipped', rps: 0, p50: 0, p99: 0, errors: 0, non2xx: 0 };

async function load(name: string, opts: autocannon.Options, o: { warmup?: boolean } = {}): Promise<Row> {
  if (ONLY && name.startsWith('flowgate') && !ONLY.test(name)) return { ...SKIPPED, name };
  if (WARMUP > 0 && o.warmup !== false) await autocannon({ ...opts, duration: WARMUP, connections: CONNECTIONS });
  const r = await autocannon({ ...(opts.amount ? {} : { duration: DURATION }), ...opts, connections: CONNECTIONS });
  const row = { name, rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
  process.stderr.write(`  ${name.padEnd(44)} ${String(row.rps).padStart(7)} req/s  p50 ${row.p50} ms  p99 ${row.p99} ms${row.non2xx || row.errors ? `  (non-2xx ${row.non2xx}, errors ${row.errors})` : ''}\n`);
  return row;
}

const form = (body: Record<string, string>) => new URLSearchParams(body).toString();
const formHeaders = (authorization?: string) => ({ 'content-type': 'application/x-www-form-urlencoded', ...(authorization && { authorization }) });

/** Resident memory of a process, MB (Linux). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target {
  workload: string;
  target: string;
  measured: string;
  met: boolean;
}

async function main() {
  process.stderr.write(`bench: ${DURATION}s per scenario, ${CONNECTIONS} connections, one server process each\n`);
  // The servers run the compiled code (dist/), as `npm start` does: build it if it is stale.
  const built = spawnSync(process.execPath, [path.join(here, '../scripts/ensure-build.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('build failed');
  // A collector that accepts and drops OTLP exports, for the same server with tracing on.
  const sink = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')));
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const otlp = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;
  const [koa, peer, fg, fgWarn, traced] = await Promise.all([
    startChild('baseline-koa.ts'),
    startChild('baseline-oidc.ts'),
    // --expose-gc only lets the bench ask for a full collection between rounds, to tell live data
    // from the heap's high-water mark; nothing collects during a measurement.
    startChild('flowgate-server.ts', {}, ['--expose-gc']),
    startChild('flowgate-server.ts', { BENCH_LOG_LEVEL: 'warn' }),
    startChild('flowgate-server.ts', { BENCH_OTLP_ENDPOINT: otlp }),
  ]);
  const rows: Row[] = [];
  const introspect = (url: string, auth: string, token: string, extra: Record<string, string> = {}) => ({
    url: `${url}/token/introspection`,
    method: 'POST' as const,
    headers: formHeaders(auth),
    body: form({ token, ...extra }),
  });
  const clientCredentials = (s: typeof fg) => ({ url: `${s.url}/token`, method: 'POST' as const, headers: formHeaders(s.appAuth), body: form({ grant_type: 'client_credentials', scope: 'workflows:read' }) });

  // Memory first, on a server nothing has loaded yet: idle, then after each of three rounds of mixed
  // load (every introspected kind, rate-limited introspection, issuance).
  await sleep(2000);
  const memory: { when: string; rss_mb: number; live_heap_mb?: number }[] = [{ when: 'idle', rss_mb: rssMb(fg.pid) }];
  if (!ONLY || ONLY.test('memory')) {
    const mixed = [
      introspect(fg.url, fg.rsAuth, fg.apiKey),
      introspect(fg.url, fg.rsAuth, fg.opaqueToken),
      introspect(fg.url, fg.rsAuth, fg.jwtToken),
      introspect(fg.url, fg.rsAuth, fg.serviceJwt),
      introspect(fg.url, fg.rsAuth, fg.apiKey, { ratelimit_category: 'read' }),
      clientCredentials(fg),
    ];
    for (let round = 1; round <= 3; round++) {
      let n = 0;
      // autocannon's requests carry a path, not a url.
      const asRequest = ({ url, ...r }: { url: string; method: 'POST'; headers: Record<string, string>; body: string }) => ({ ...r, path: new URL(url).pathname });
      await autocannon({ url: fg.url, connections: CONNECTIONS, duration: 10, requests: [{ setupRequest: (req) => ({ ...req, ...asRequest(mixed[n++ % mixed.length]) }) }] });
      await sleep(1000);
      const rss = rssMb(fg.pid);
      const report = new Promise<{ afterGc?: { heapUsed: number } }>((r) => memoryReports.push(r));
      process.kill(fg.pid, 'SIGUSR2');
      memory.push({ when: `after round ${round}`, rss_mb: rss, live_heap_mb: (await report).afterGc?.heapUsed });
      process.stderr.write(`  memory: ${memory.map((m) => `${m.when} ${m.rss_mb} MB${m.live_heap_mb ? ` (live heap ${m.live_heap_mb} MB)` : ''}`).join(', ')}\n`);
    }
    // V8 gives memory back when a process goes quiet (its memory reducer): the same server idle a while.
    await sleep(15_000);
    memory.push({ when: 'idle 15 s after round 3', rss_mb: rssMb(fg.pid) });
    process.stderr.write(`  memory: ${memory.at(-1)!.when} ${memory.at(-1)!.rss_mb} MB\n`);
  }

  rows.push(await load('ceiling: bare Koa form parse + fixed JSON', { url: koa.url, method: 'POST', headers: formHeaders(), body: form({ token: 'x'.repeat(43) }) }));
  rows.push(await load('peer: oidc-provider introspection (memory)', introspect(peer.url, peer.rsAuth, peer.token)));
  rows.push(await load('peer: oidc-provider client_credentials', { url: `${peer.url}/token`, method: 'POST', headers: formHeaders(peer.appAuth), body: form({ grant_type: 'client_credentials', scope: 'workflows:read' }) }));
  rows.push(await load('flowgate: introspect opaque access token', introspect(fg.url, fg.rsAuth, fg.opaqueToken)));
  rows.push(await load('flowgate: introspect JWT access token', introspect(fg.url, fg.rsAuth, fg.jwtToken)));
  rows.push(await load('flowgate: introspect API key', introspect(fg.url, fg.rsAuth, fg.apiKey)));
  // Latency where it means something: at 32 connections a saturated server's latency is its queue
  // (Little's law: 32 / rate), so p99 is measured again at half the rate just measured.
  const peak = rows.at(-1)!;
  if (peak.rps > 0) rows.push(await load('flowgate: introspect API key at half its peak rate', { ...introspect(fg.url, fg.rsAuth, fg.apiKey), overallRate: Math.round(peak.rps / 2) }));
  rows.push(await load('flowgate: introspect API key, LOG_LEVEL=warn', introspect(fgWarn.url, fgWarn.rsAuth, fgWarn.apiKey)));
  rows.push(await load('flowgate: introspect service JWT', introspect(fg.url, fg.rsAuth, fg.serviceJwt)));
  // The same API-key introspection with a rate-limit category (an exact sliding log in Redis): a key
  // within its limit (every request admitted and counted), then a key past it (the enterprise plan's
  // 20,000 a minute, which the memory rounds and this run exceed: refused until requests leave).
  rows.push(await load('flowgate: introspect API key + rate limit', introspect(fg.url, fg.rsAuth, fg.roomyKey, { ratelimit_category: 'read' })));
  rows.push(await load('flowgate: introspect API key + rate limit, over the limit', introspect(fg.url, fg.rsAuth, fg.apiKey, { ratelimit_category: 'read' })));
  rows.push(await load('flowgate: client_credentials (Redis)', clientCredentials(fg)));
  // OpenTelemetry on (every request sampled, spans exported in batches to a local collector).
  rows.push(await load('flowgate: introspect API key, tracing on', introspect(traced.url, traced.rsAuth, traced.apiKey)));
  rows.push(await load('flowgate: client_credentials, tracing on', clientCredentials(traced)));

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

  // Cold caches: COLD_KEYS distinct keys no request has asked for yet, each introspected once (the
  // first pass: every one a cache miss on PostgreSQL), then the same keys cycled for DURATION.
  const coldKeys = COLD_KEYS > 0 && (!ONLY || ONLY.test('cold')) ? await seedColdKeys({ ...fg, count: COLD_KEYS }) : [];
  if (coldKeys.length) {
    const cold = (name: string, opts: Partial<autocannon.Options>) => {
      let k = 0;
      return load(name, { ...introspect(fg.url, fg.rsAuth, ''), ...opts, requests: [{ setupRequest: (req) => ({ ...req, body: form({ token: coldKeys[k++ % coldKeys.length] }) }) }] }, { warmup: false });
    };
    rows.push(await cold(`flowgate: introspect ${coldKeys.length} cold API keys, first pass`, { amount: coldKeys.length }));
    rows.push(await cold(`flowgate: introspect ${coldKeys.length} API keys cycling`, {}));
  }

  const ceiling = rows[0];
  const peerIntrospect = rows[1];
  const peerToken = rows[2];
  const row = (name: string) => rows.find((r) => r.name === name && r.rps > 0);
  const table = rows.filter((r) => r.rps > 0).map((r) => {
    const issuance = /client_credentials|jwt-bearer/.test(r.name);
    const peerRow = issuance ? peerToken : peerIntrospect;
    return { ...r, vs_ceiling: +(r.rps / ceiling.rps).toFixed(2), vs_peer: +(r.rps / peerRow.rps).toFixed(2), peer: peerRow.name };
  });
  process.stdout.write('\n| scenario | req/s | p50 ms | p99 ms | × ceiling | × peer |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of table) process.stdout.write(`| ${r.name} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.vs_ceiling} | ${r.vs_peer} |\n`);

  // The targets, as ratios within this run.
  const ratio = (a?: Row, b?: Row) => (a && b ? +(a.rps / b.rps).toFixed(2) : NaN);
  const targets: Target[] = [];
  const t = (workload: string, target: string, measured: string, met: boolean) => targets.push({ workload, target, measured, met });
  const half = row('flowgate: introspect API key at half its peak rate');
  for (const name of ['flowgate: introspect API key', 'flowgate: introspect opaque access token']) {
    const r = row(name);
    const p99 = name.endsWith('API key') && half ? `p99 ${r?.p99} ms saturated, ${half.p99} ms at half the rate` : `p99 ${r?.p99} ms saturated`;
    if (r) t(name.replace('flowgate: ', ''), '≥ 0.6x bare Koa, ≥ 3x bare oidc-provider, p99 ≤ 5 ms', `${ratio(r, ceiling)}x, ${ratio(r, peerIntrospect)}x, ${p99}`, ratio(r, ceiling) >= 0.6 && ratio(r, peerIntrospect) >= 3 && (half?.p99 ?? r.p99) <= 5);
  }
  const hot = row('flowgate: introspect API key');
  const warn = row('flowgate: introspect API key, LOG_LEVEL=warn');
  if (hot && warn) t('the same at LOG_LEVEL=info vs warn', '≥ 0.9x', `${ratio(hot, warn)}x`, ratio(hot, warn) >= 0.9);
  const limited = row('flowgate: introspect API key + rate limit');
  if (hot && limited) t('introspection with a rate-limit category (within the limit)', '≥ 0.8x of without', `${ratio(limited, hot)}x`, ratio(limited, hot) >= 0.8);
  const over = row('flowgate: introspect API key + rate limit, over the limit');
  if (hot && over) t('the same, past the limit (answered limited)', '(reported)', `${ratio(over, hot)}x`, true);
  const first = rows.find((r) => r.name.endsWith('first pass') && r.rps > 0);
  const cycling = rows.find((r) => r.name.endsWith('cycling') && r.rps > 0);
  if (hot && first) t(`${coldKeys.length} distinct cold keys, first pass`, '≥ 0.5x of one hot key, p99 ≤ 20 ms', `${ratio(first, hot)}x, p99 ${first.p99} ms`, ratio(first, hot) >= 0.5 && first.p99 <= 20);
  if (hot && cycling) t(`${coldKeys.length} keys cycling for ${DURATION} s`, '(reported)', `${ratio(cycling, hot)}x, p99 ${cycling.p99} ms (hot key: ${hot.p99} ms)`, true);
  const cc = row('flowgate: client_credentials (Redis)');
  if (cc) t('client_credentials, tokens in Redis', '≥ 1.2x bare oidc-provider (memory)', `${ratio(cc, peerToken)}x`, ratio(cc, peerToken) >= 1.2);
  const jb = row('flowgate: jwt-bearer grant (Redis)');
  if (jb) t('JWT-bearer grant', '≥ 0.8x bare oidc-provider client_credentials', `${ratio(jb, peerToken)}x`, ratio(jb, peerToken) >= 0.8);
  if (memory.length > 1) {
    const after = memory.slice(1, 4).map((m) => m.rss_mb);
    const settled = memory[4]?.rss_mb;
    t('resident memory, idle and after 3 rounds of 10 s mixed load', '≤ 150 MB, flat across rounds', `${memory[0].rss_mb} MB idle; ${after.join(' / ')} MB; ${settled} MB 15 s later; live heap after a full collection ${memory.slice(1, 4).map((m) => m.live_heap_mb).join(' / ')} MB`, Math.max(memory[0].rss_mb, ...after) <= 150 && after[2] - after[0] <= 15);
  }
  const tr = row('flowgate: introspect API key, tracing on');
  const trc = row('flowgate: client_credentials, tracing on');
  process.stdout.write('\n| workload (LOG_LEVEL=info, rate limiting on) | target | measured | met |\n|---|---|---|---|\n');
  for (const x of targets) process.stdout.write(`| ${x.workload} | ${x.target} | ${x.measured} | ${x.met ? 'yes' : 'no'} |\n`);
  if (tr && hot) process.stdout.write(`\ntracing on (every request sampled): introspection ${ratio(tr, hot)}x, client_credentials ${ratio(trc, cc)}x the rate with it off\n`);
  const cpu = os.cpus();
  const out = {
    when: new Date().toISOString(),
    machine: { cpus: cpu.length, model: cpu[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version, kernel: os.release() },
    settings: { duration_s: DURATION, connections: CONNECTIONS, warmup_s: WARMUP, cold_keys: coldKeys.length, log_level: 'info', rate_limiting: 'on' },
    rows: table,
    targets,
    memory,
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
