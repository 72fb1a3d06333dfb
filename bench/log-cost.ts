// What request logging costs the hot path, measured: API-key introspection (32 keep-alive
// connections, autocannon) against one Flowgate process whose stdout is a pipe read by this process,
// at LOG_LEVEL=warn (no request lines) and info (one line per request), with pino's synchronous
// stdout (one write(2) per line) and with Flowgate's buffered asynchronous destination.
// Run: npx tsx bench/log-cost.ts   (BENCH_DURATION seconds per row, default 8)
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 8);

async function run(level: string, sync: boolean) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'flowgate-server.ts')], {
    env: { ...process.env, BENCH_LOG_LEVEL: level, BENCH_LOG_SYNC: sync ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let lines = 0;
  const rl = readline.createInterface({ input: child.stdout! });
  const fg = await new Promise<any>((resolve) =>
    rl.on('line', (line) => {
      lines++;
      if (line.startsWith('{') && line.includes('"rsAuth"')) resolve(JSON.parse(line));
    }),
  );
  const opts = {
    url: `${fg.url}/token/introspection`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: fg.rsAuth },
    body: new URLSearchParams({ token: fg.apiKey }).toString(),
    connections: 32,
  };
  await autocannon({ ...opts, duration: 2 });
  const before = lines;
  const r = await autocannon({ ...opts, duration: DURATION });
  child.kill('SIGTERM');
  await new Promise((res) => child.once('exit', res));
  return { level, stdout: sync ? 'pino sync' : 'buffered async', rps: Math.round(r.requests.average), p99: r.latency.p99, logLines: lines - before };
}

// Rounds alternate the four settings, so a neighbour's load on a shared machine hits them alike; the
// best round of each setting is reported (noise only ever slows a run down).
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const all: Awaited<ReturnType<typeof run>>[] = [];
for (let round = 0; round < ROUNDS; round++) for (const sync of [true, false]) for (const level of ['warn', 'info']) all.push(await run(level, sync));
const rows = [true, false].flatMap((sync) =>
  ['warn', 'info'].map((level) => all.filter((r) => r.level === level && r.stdout === (sync ? 'pino sync' : 'buffered async')).sort((a, b) => b.rps - a.rps)[0]),
);
console.table(rows);
const ratio = (s: boolean) => (rows.find((r) => r.level === 'info' && r.stdout === (s ? 'pino sync' : 'buffered async'))!.rps / rows.find((r) => r.level === 'warn' && r.stdout === (s ? 'pino sync' : 'buffered async'))!.rps).toFixed(2);
console.log(`info / warn: pino sync ${ratio(true)}x, buffered async ${ratio(false)}x`);
