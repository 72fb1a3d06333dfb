/**
 * Sliding log vs sliding-window counter, measured on a real Redis (REDIS_URL, default local):
 *  1. accuracy: the most requests either admits within any true window, for steady, random and
 *     adversarial (burst at a bucket edge) traffic, with a controlled clock;
 *  2. Redis memory per key at saturation (MEMORY USAGE);
 *  3. cost: checks/s and latency, sequential and 32 in flight, on one connection.
 * Run: npx tsx bench/ratelimit-measure.ts
 */
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisLimiter } from '../src/ratelimit/redis-limiter.js';
import type { Algorithm } from '../src/ratelimit/algorithm.js';
import type { RateLimit } from '../src/ratelimit/types.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `fgmeasure:${randomBytes(4).toString('hex')}:`;
const client = new Redis(url, { keyPrefix: prefix });
const algos: Algorithm[] = ['sliding_log', 'sliding_counter'];

/** Most admitted requests inside any window of `w` ms (two pointers over sorted times). */
function maxInWindow(times: number[], w: number): number {
  let best = 0;
  let i = 0;
  for (let j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= w) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

async function accuracy(algo: Algorithm, pattern: string, times: number[], l: RateLimit) {
  const lim = new RedisLimiter(client, { algorithm: algo, timeoutMs: 5000 });
  const key = `acc:${algo}:${pattern}:${l.limit}`;
  const admitted: number[] = [];
  let refusedUnderLimit = 0;
  for (const t of times) {
    const d = await lim.check(key, l, t);
    if (d.allowed) admitted.push(t);
    else {
      // Was the refusal wrong? Count admitted in the true window (t - w, t].
      const inWin = admitted.filter((a) => t - a < l.window * 1000).length;
      if (inWin < l.limit) refusedUnderLimit++;
    }
  }
  const peak = maxInWindow(admitted, l.window * 1000);
  return { algo, pattern, offered: times.length, admitted: admitted.length, peakInAnyWindow: peak, overshootPct: Math.round(((peak - l.limit) / l.limit) * 1000) / 10, wronglyRefused: refusedUnderLimit };
}

function patterns(l: RateLimit): Record<string, number[]> {
  const w = l.window * 1000;
  const base = 10 * w; // bucket-aligned start
  const steady: number[] = [];
  for (let t = base; t < base + 3 * w; t += Math.floor(w / (l.limit * 1.5))) steady.push(t);
  const random: number[] = [];
  let t = base;
  while (t < base + 3 * w) {
    t += Math.max(1, Math.round((-Math.log(1 - Math.random()) * w) / (l.limit * 2)));
    random.push(t);
  }
  // Adversarial: a full burst just before a bucket edge, then keep trying through the next bucket.
  const edge: number[] = [];
  for (let i = 0; i < l.limit; i++) edge.push(base + w - 50);
  for (let tt = base + w; tt < base + 2 * w - 50; tt += Math.floor(w / (l.limit * 4))) edge.push(tt);
  return { steady_1_5x: steady, poisson_2x: random, burst_at_edge: edge };
}

async function memory(algo: Algorithm, limit: number) {
  const lim = new RedisLimiter(client, { algorithm: algo, timeoutMs: 5000 });
  const key = `mem:${algo}:${limit}`;
  const l = { limit, window: 60 };
  const pipeline: Promise<unknown>[] = [];
  for (let i = 0; i < limit; i++) pipeline.push(lim.check(key, l, 1_000_000 + i));
  await Promise.all(pipeline);
  const bytes = (await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number;
  return { algo, limit, bytesPerKey: bytes };
}

async function cost(algo: Algorithm, limit: number, inFlight: number, n = 20_000) {
  const lim = new RedisLimiter(client, { algorithm: algo, timeoutMs: 5000 });
  const l = { limit, window: 60 };
  const keys = Array.from({ length: 100 }, (_, i) => `cost:${algo}:${limit}:${inFlight}:${i}`);
  const lat: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const k = keys[next++ % keys.length];
        const t0 = performance.now();
        await lim.check(k, l);
        lat.push(performance.now() - t0);
      }
    }),
  );
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => Math.round(lat[Math.floor(lat.length * p)] * 1000) / 1000;
  return { algo, limit, inFlight, checksPerSec: Math.round(n / secs), p50ms: q(0.5), p99ms: q(0.99) };
}

async function main() {
  await client.ping();
  const acc: unknown[] = [];
  for (const l of [{ limit: 100, window: 60 }, { limit: 1000, window: 60 }]) {
    const ps = patterns(l);
    for (const [name, times] of Object.entries(ps)) for (const a of algos) acc.push({ limit: l.limit, ...(await accuracy(a, name, times, l)) });
  }
  console.log('\n## accuracy (controlled clock; peakInAnyWindow should be <= limit)');
  console.table(acc);
  const mem: unknown[] = [];
  for (const limit of [100, 1000, 10_000]) for (const a of algos) mem.push(await memory(a, limit));
  console.log('\n## Redis memory per key at saturation');
  console.table(mem);
  const c: unknown[] = [];
  // limit 50 with 20k checks over 100 keys: keys saturate, so the refusal path is measured too.
  for (const [limit, inFlight] of [[1000, 1], [1000, 32], [50, 32], [10_000, 32]]) for (const a of algos) c.push(await cost(a, limit, inFlight));
  console.log('\n## cost per check (one connection; real Redis clock)');
  console.table(c);
  const keys = await client.keys('*');
  if (keys.length) await client.del(...keys.map((k) => k.slice(prefix.length)));
  client.disconnect();
}

await main();
