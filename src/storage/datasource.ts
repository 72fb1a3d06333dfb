import path from 'node:path';
import { DataSource, MigrationExecutor, type DataSourceOptions, type EntitySchema, type MixedList } from 'typeorm';
import type { Config } from '../config/schema.js';
import { lockDataDir } from './data-lock.js';
import { QueryMetrics } from '../metrics/stores.js';

export interface DataSourceParts {
  entities: EntitySchema<any>[];
  migrations: MixedList<Function>;
}

/** Margin above statement_timeout before the client gives up waiting on its own (a stalled network). */
const CLIENT_TIMEOUT_MARGIN_MS = 1000;

/**
 * Any 64-bit number shared by every Flowgate instance of a database: the advisory lock that
 * serializes migrations ("flowgate" in ASCII).
 */
export const MIGRATION_LOCK = 0x666c6f7767617465n;

/**
 * The pg pool's settings. Each process holds at most `poolSize` connections (docs/operations.md sizes
 * it: instances × WORKERS × DATABASE_POOL_SIZE + what migrations and the CLI need must stay under
 * max_connections). Timeouts bound every wait:
 * - connecting (connectionTimeoutMillis, also a pool checkout when every connection is busy);
 * - a statement on the server (statement_timeout; idle_in_transaction_session_timeout for a
 *   transaction left open), sent as startup parameters so no per-connection SET is needed;
 * - the answer on the client (query_timeout: statement timeout plus a margin), for a network or
 *   server stall where PostgreSQL cannot enforce its own timeout.
 * Behind PgBouncer in transaction mode (DATABASE_PGBOUNCER) no startup parameter is sent (PgBouncer
 * refuses unknown ones): set them on the role instead (`ALTER ROLE … SET statement_timeout = …`).
 * Nothing here needs session state, and pg only uses unnamed prepared statements, which PgBouncer's
 * transaction mode supports.
 */
export function poolOptions(config: Config): Record<string, unknown> {
  const d = config.database;
  return {
    max: d.poolSize,
    connectionTimeoutMillis: d.connectTimeoutMs,
    idleTimeoutMillis: d.idleTimeoutMs,
    query_timeout: d.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
    application_name: 'flowgate',
    ...(!d.pgbouncer && {
      statement_timeout: d.statementTimeoutMs,
      idle_in_transaction_session_timeout: Math.max(d.statementTimeoutMs * 2, 10_000),
    }),
  };
}

/**
 * PostgreSQL when `DATABASE_URL` is set, otherwise embedded PGlite under the data directory (loaded
 * only then: a deployment on PostgreSQL never loads the embedded engine). Both run the same
 * migrations; schema changes never go through `synchronize`.
 */
export async function createDataSource(config: Config, parts: DataSourceParts, pool = poolOptions(config)): Promise<DataSource> {
  const common = {
    type: 'postgres' as const,
    entities: parts.entities,
    migrations: parts.migrations,
    migrationsTableName: 'flowgate_migrations',
    synchronize: false,
    logging: false,
  };
  if (config.databaseUrl) {
    return new DataSource({ ...common, url: config.databaseUrl, extra: pool } as DataSourceOptions);
  }
  const { PGliteDriver } = await import('typeorm-pglite');
  return new DataSource({
    ...common,
    driver: new PGliteDriver({ dataDir: path.join(config.dataDir, 'pglite') }).driver,
  } as DataSourceOptions);
}

/**
 * Applies pending migrations, one instance at a time: every starting instance takes the same
 * transaction-scoped advisory lock first (pg_advisory_xact_lock, which also works through PgBouncer's
 * transaction mode, unlike a session lock), so N instances starting together run the migrations once
 * and the others find nothing pending when they get the lock. All pending migrations run in that one
 * transaction (PostgreSQL DDL is transactional): a failure leaves the schema as it was.
 */
export async function migrate(ds: DataSource, embedded: boolean): Promise<void> {
  if (embedded) {
    // One process owns the embedded database: nobody to race with.
    await ds.runMigrations({ transaction: 'each' });
    return;
  }
  const qr = ds.createQueryRunner();
  try {
    await qr.startTransaction();
    await qr.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
    const executor = new MigrationExecutor(ds, qr);
    executor.transaction = 'none';
    await executor.executePendingMigrations();
    await qr.commitTransaction();
  } catch (err) {
    if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => {});
    throw err;
  } finally {
    await qr.release();
  }
}

/**
 * Opens and migrates the store of record. The embedded database is first locked for this process
 * (DatabaseInUseError when another process holds it; see data-lock.ts) and released on destroy().
 */
export async function openDatabase(config: Config, parts: DataSourceParts): Promise<DataSource> {
  if (config.databaseUrl) {
    // Migrations get their own connection without the request path's timeouts: waiting for another
    // instance's migrations, or a long one, must not time out like a request would.
    const runner = await createDataSource(config, parts, { max: 1, connectionTimeoutMillis: config.database.connectTimeoutMs, application_name: 'flowgate-migrate' });
    await runner.initialize();
    try {
      await migrate(runner, false);
    } finally {
      await runner.destroy().catch(() => {});
    }
  }
  const release = config.databaseUrl ? undefined : lockDataDir(config.dataDir, { issuer: config.issuer });
  const ds = await createDataSource(config, parts);
  try {
    await ds.initialize();
    // TypeORM only takes decorated subscriber classes from its options; an instance can be added.
    ds.subscribers.push(new QueryMetrics());
    if (!config.databaseUrl) await migrate(ds, true);
  } catch (err) {
    if (ds.isInitialized) await ds.destroy().catch(() => {});
    release?.();
    throw err;
  }
  if (release) {
    const destroy = ds.destroy.bind(ds);
    ds.destroy = async () => {
      try {
        await destroy();
      } finally {
        release();
      }
    };
  }
  return ds;
}
