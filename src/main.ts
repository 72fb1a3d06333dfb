import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { loadConfig, ConfigError } from './config/load.js';
import { redisMode, type Config } from './config/schema.js';
import { createLogger } from './http/logger.js';
import { startServer, type RunningServer } from './server.js';
import { buildServices, type Services } from './compose/services.js';
import { seedDevelopmentData, type DevSeed } from './dev-seed.js';
import { DatabaseInUseError } from './storage/data-lock.js';

/** Workers that die this often within a minute mean a crash loop: stop instead of forking forever. */
const MAX_RESTARTS_PER_MINUTE = 10;
/** How long the primary waits for workers to finish in-flight requests before killing them. */
const SHUTDOWN_TIMEOUT_MS = 30_000;

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

function announceMode(config: Config, logger: Logger): void {
  const redis = redisMode(config);
  if (!config.databaseUrl || !redis) {
    logger.info(
      { database: config.databaseUrl ? 'postgresql' : `embedded PGlite (${config.dataDir})`, store: redis ? `redis (${redis})` : 'in-process' },
      'single-process development mode: set DATABASE_URL and REDIS_URL to run on PostgreSQL and Redis',
    );
  }
}

/** First start only: the development organization, admin user and demo client (see dev-seed.ts). */
async function seedOnce(config: Config, services: Services): Promise<DevSeed | undefined> {
  return config.seedDevData ? seedDevelopmentData(services) : undefined;
}

function printSeed(config: Config, seed: DevSeed | undefined): void {
  if (!seed) return;
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
      '  For the README\'s examples, in another terminal:',
      `    export CLIENT_ID=${seed.clientId} CLIENT_SECRET=${seed.clientSecret}`,
      '',
      `  Open ${config.issuer}/dashboard and sign in with ${seed.email} and the password above.`,
      `  Discovery: ${config.issuer}/.well-known/openid-configuration`,
      '',
    ].join('\n') + '\n',
  );
}

/** One process serving the port: the default, and what each cluster worker runs. */
async function runServer(config: Config, logger: Logger, opts: { seed: boolean }): Promise<void> {
  // Handlers go in before startup: a SIGTERM that arrives while starting waits for the start to
  // finish and then shuts down cleanly, instead of killing the process half-way.
  let running: RunningServer | undefined;
  let stopping = false;
  const stop = () => {
    running!.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    if (running) stop();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  running = await startServer(config, logger);
  if (stopping) return stop();
  // Seed before announcing, so "listening" means the first-start data is there too.
  const seed = opts.seed ? await seedOnce(config, running.services) : undefined;
  if (cluster.isPrimary) logger.info({ url: config.issuer, port: config.port }, 'Flowgate listening');
  printSeed(config, seed);
}

/**
 * WORKERS=N: the primary prepares shared state once (signing keys, migrations, first-start seed),
 * then forks N workers that share the port (node:cluster distributes connections), restarts workers
 * that crash, and on SIGTERM/SIGINT asks each worker to shut down gracefully.
 */
async function runPrimary(config: Config, logger: Logger): Promise<void> {
  // Done here, not in each worker: N workers racing to create keys or apply migrations would collide.
  const services = await buildServices(config, logger);
  let seed: DevSeed | undefined;
  try {
    seed = await seedOnce(config, services);
  } finally {
    await services.close();
  }

  let stopping = false;
  const restarts: number[] = [];
  const alive = new Set<number>();
  const fork = () => alive.add(cluster.fork().id);
  const killAll = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };

  cluster.on('online', (worker: Worker) => logger.info({ worker: worker.id, pid: worker.process.pid }, 'worker started'));
  let listening = 0;
  cluster.on('listening', (worker: Worker) => {
    listening += 1;
    if (listening > config.workers) logger.info({ worker: worker.id, pid: worker.process.pid }, 'replacement worker listening');
    if (listening === config.workers) {
      logger.info({ url: config.issuer, port: config.port, workers: config.workers }, 'Flowgate listening');
      printSeed(config, seed);
      seed = undefined;
    }
  });
  cluster.on('exit', (worker: Worker, code: number | null, signal: string | null) => {
    alive.delete(worker.id);
    if (stopping) {
      if (code !== 0) process.exitCode = 1;
      if (alive.size === 0) process.exit();
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts.length && restarts[0] < now - 60_000) restarts.shift();
    if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
      logger.fatal({ pid: worker.process.pid, code, signal }, 'workers keep crashing; giving up');
      stopping = true;
      process.exitCode = 1;
      killAll('SIGTERM');
      if (alive.size === 0) process.exit();
      return;
    }
    logger.error({ worker: worker.id, pid: worker.process.pid, code, signal }, 'worker exited unexpectedly; starting a replacement');
    fork();
  });

  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, workers: config.workers }, 'shutting down: asking workers to finish in-flight requests');
    if (alive.size === 0) process.exit(0);
    killAll('SIGTERM');
    setTimeout(() => {
      logger.error('workers did not stop in time; killing them');
      killAll('SIGKILL');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  for (let i = 0; i < config.workers; i++) fork();
}

async function main() {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  if (cluster.isWorker) {
    // The primary already migrated, generated keys and seeded; a worker only serves.
    return runServer(config, logger.child({ worker: cluster.worker?.id }), { seed: false });
  }
  announceMode(config, logger);
  if (config.workers > 1) return runPrimary(config, logger);
  return runServer(config, logger, { seed: true });
}

main().catch((err) => {
  if (err instanceof DatabaseInUseError) {
    process.stderr.write(`Flowgate cannot start: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`Flowgate failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
