// CPU time one request log line costs the server process, by destination: pino's synchronous stdout
// (one write(2) per line) and Flowgate's buffered asynchronous stdout (src/http/logger.ts). CPU time
// of the logging process, unlike throughput, barely moves when neighbours load the machine.
// stdout is a pipe drained by the parent, as under a log collector.
// Run: npx tsx bench/log-cpu.ts   (BENCH_LINES, default 200000)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createLogger, flushLogsSync } from '../src/http/logger.js';

const LINES = Number(process.env.BENCH_LINES ?? 200_000);

if (process.argv[2] === 'child') {
  const sync = process.argv[3] === 'sync';
  const logger = createLogger('info', sync ? pino.destination({ dest: 1, sync: true }) : undefined);
  const line = { reqId: '3a8ce247-cc87-46f9-9b84-f6a2aaee4c7d', method: 'POST', url: '/token/introspection', status: 200, ms: 0.4, ip: '10.0.0.7' };
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  // In batches with a yield between them, as request handlers would log.
  for (let i = 0; i < LINES; i += 100) {
    for (let j = 0; j < 100; j++) logger.info(line, 'request');
    await new Promise((r) => setImmediate(r));
  }
  flushLogsSync(logger);
  const cpu = process.cpuUsage(t0);
  process.stderr.write(JSON.stringify({ cpuUs: cpu.user + cpu.system, wallMs: performance.now() - w0 }) + '\n');
  process.exit(0);
} else {
  const rows = [];
  for (const round of [1, 2, 3]) {
    for (const mode of ['sync', 'buffered']) {
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', mode], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.resume();
      let err = '';
      child.stderr.on('data', (c) => (err += c));
      await new Promise((r) => child.once('exit', r));
      const r = JSON.parse(err.trim().split('\n').pop()!);
      rows.push({ round, mode, 'µs CPU per line': +(r.cpuUs / LINES).toFixed(2), 'wall ms': Math.round(r.wallMs) });
    }
  }
  console.table(rows);
}
