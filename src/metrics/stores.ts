import type { Cluster, Redis } from 'ioredis';
import type { DataSource, EntitySubscriberInterface } from 'typeorm';
import type { AfterQueryEvent } from 'typeorm/subscriber/event/QueryEvent.js';
import { dbPool, dbQueryDuration, onPoolScrape, redisCommandDuration, redisErrors } from './registry.js';

const dbOk = dbQueryDuration.labels('ok');
const dbError = dbQueryDuration.labels('error');
const dbTimeout = dbQueryDuration.labels('timeout');

/**
 * TypeORM's query subscriber hook (every statement through any query runner): latency of successful
 * statements, and failures split into timeouts (statement_timeout, the client's query_timeout) and
 * other errors. TypeORM measures in whole milliseconds.
 */
export class QueryMetrics implements EntitySubscriberInterface {
  afterQuery(event: AfterQueryEvent): void {
    if (event.success) {
      dbOk.observe((event.executionTime ?? 0) / 1000);
      return;
    }
    const err = event.error as { code?: string; message?: string } | undefined;
    const timedOut = err?.code === '57014' || /timeout/i.test(err?.message ?? '');
    (timedOut ? dbTimeout : dbError).observe(0);
  }
}

interface PgPool {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  options?: { max?: number };
}

let pools: { pool: PgPool }[] = [];

/** The pg pool behind a data source (PostgreSQL only), read at scrape time. */
export function observeDatabasePool(ds: DataSource): () => void {
  const pool = (ds.driver as unknown as { master?: PgPool }).master;
  if (!pool || typeof pool.totalCount !== 'number') return () => {};
  const entry = { pool };
  pools.push(entry);
  return () => {
    pools = pools.filter((p) => p !== entry);
  };
}

onPoolScrape(collectPoolGauges);
function collectPoolGauges(): void {
  let total = 0, idle = 0, waiting = 0, max = 0;
  for (const { pool } of pools) {
    total += pool.totalCount;
    idle += pool.idleCount;
    waiting += pool.waitingCount;
    max += pool.options?.max ?? 0;
  }
  dbPool.set({ state: 'total' }, total);
  dbPool.set({ state: 'idle' }, idle);
  dbPool.set({ state: 'waiting' }, waiting);
  dbPool.set({ state: 'max' }, max);
}

const redisOk = redisCommandDuration.labels('ok');
const redisFailed = redisCommandDuration.labels('error');
const instrumented = new WeakSet<object>();

/**
 * Latency and outcome of every command an ioredis client sends (its `sendCommand` on this instance,
 * which every command and pipeline goes through), and its connection errors.
 */
export function instrumentRedis(client: Redis | Cluster): void {
  if (instrumented.has(client)) return;
  instrumented.add(client);
  client.on('error', () => redisErrors.inc());
  const c = client as unknown as { sendCommand: (command: { promise: Promise<unknown> }, ...rest: unknown[]) => unknown };
  const send = c.sendCommand.bind(client);
  // Every argument passes through: the Cluster client's pipelines name the node as a third one.
  c.sendCommand = (command, ...rest) => {
    const start = performance.now();
    const done = (h: typeof redisOk) => () => h.observe((performance.now() - start) / 1000);
    command.promise.then(done(redisOk), done(redisFailed));
    return send(command, ...rest);
  };
}
