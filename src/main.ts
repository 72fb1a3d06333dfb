import { loadConfig, ConfigError } from './config/load.js';
import { createLogger } from './http/logger.js';
import { startServer } from './server.js';
import { seedDevelopmentData } from './dev-seed.js';

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (!config.databaseUrl || !config.redisUrl) {
    logger.info(
      { database: config.databaseUrl ? 'postgresql' : `embedded PGlite (${config.dataDir})`, store: config.redisUrl ? 'redis' : 'in-process' },
      'single-process development mode: set DATABASE_URL and REDIS_URL to run on PostgreSQL and Redis',
    );
  }
  const running = await startServer(config, logger);
  logger.info({ url: config.issuer, port: config.port }, 'Flowgate listening');
  if (config.seedDevData) {
    const seed = await seedDevelopmentData(running.services);
    if (seed) {
      process.stdout.write(
        [
          '',
          '  Flowgate is ready. This first start created (shown once):',
          `    organization   Development (${seed.orgId})`,
          `    admin user     ${seed.email}`,
          `    password       ${seed.password}`,
          `    demo client    client_id ${seed.clientId}`,
          `                   client_secret ${seed.clientSecret}`,
          '',
          `  Open ${config.issuer}/dashboard and sign in with ${seed.email} and the password above.`,
          `  Discovery: ${config.issuer}/.well-known/openid-configuration`,
          '',
        ].join('\n') + '\n',
      );
    }
  }
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`Flowgate failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
