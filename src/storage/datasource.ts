import path from 'node:path';
import { DataSource, type EntitySchema, type MixedList } from 'typeorm';
import { PGliteDriver } from 'typeorm-pglite';
import type { Config } from '../config/schema.js';
import { lockDataDir } from './data-lock.js';

export interface DataSourceParts {
  entities: EntitySchema<any>[];
  migrations: MixedList<Function>;
}

/**
 * PostgreSQL when `DATABASE_URL` is set, otherwise embedded PGlite under the data directory.
 * Both run the same migrations; schema changes never go through `synchronize`.
 */
export function createDataSource(config: Config, parts: DataSourceParts): DataSource {
  const common = {
    type: 'postgres' as const,
    entities: parts.entities,
    migrations: parts.migrations,
    migrationsTableName: 'flowgate_migrations',
    synchronize: false,
    logging: false,
  };
  if (config.databaseUrl) {
    return new DataSource({ ...common, url: config.databaseUrl, extra: { max: 20 } });
  }
  return new DataSource({
    ...common,
    driver: new PGliteDriver({ dataDir: path.join(config.dataDir, 'pglite') }).driver,
  });
}

/**
 * Opens and migrates the store of record. The embedded database is first locked for this process
 * (DatabaseInUseError when another process holds it; see data-lock.ts) and released on destroy().
 */
export async function openDatabase(config: Config, parts: DataSourceParts): Promise<DataSource> {
  const release = config.databaseUrl ? undefined : lockDataDir(config.dataDir, { issuer: config.issuer });
  const ds = createDataSource(config, parts);
  try {
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
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
