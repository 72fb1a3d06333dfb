import cluster, { type Worker } from 'node:cluster';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { loadConfig, ConfigError } from './config/load.js';
import { redisMode, type Config } from './config/schema.js';
import { createLogger, flushLogsSync } from './http/logger.js';
import { startTracing, type Tracing } from './tracing/index.js';
import type { RunningServer } from './server.js';
import type { Services } from './compose/services.js';
import type { DevSeed } from './dev-seed.js';
import { DatabaseInUseError } from './storage/data-lock.js';

/** Beyond the configured delay and drain time, what the primary allows workers before killing them. */
const PRIMARY_MARGIN_MS = 5000;

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
  if (!config.seedDevData) return undefined;
  const { seedDevelopmentData } = await import('./dev-seed.js');
  return seedDevelopmentData(services);
}

/** Where the first start's credentials go when stdout is not a terminal (it is the log then). */
export const CREDENTIALS_FILE = 'first-start-credentials.txt';

function printSeed(config: Config, logger: Logger, seed: DevSeed | undefined): void {
  if (!seed) return;
  const secrets = [
    `organization   Development (${seed.orgId})`,
    `admin user     ${seed.email}`,
    `password       ${seed.password}`,
    `demo client    client_id ${seed.clientId}`,
    `               client_secret ${seed.clientSecret}`,
  ];
  const where = [
    "For the README's examples, in another terminal:",
    `  export CLIENT_ID=${seed.clientId} CLIENT_SECRET=${seed.clientSecret}`,
    '',
    `Open ${config.issuer}/dashboard and sign in with ${seed.email} and the password above.`,
    `Discovery: ${config.issuer}/.well-known/openid-configuration`,
  ];
  if (process.stdout.isTTY) {
    process.stdout.write(['', '  Flowgate is ready. This first start created (shown once):', ...secrets.map((l) => `    ${l}`), '', ...where.map((l) => `  ${l}`), ''].join('\n') + '\n');
    return;
  }
  // stdout is a pipe or a file: a log collector keeps it. The password and the client secret go to a
  // file only the service's user can read, and the log says where.
  const file = path.join(config.dataDir, CREDENTIALS_FILE);
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(file, ['Flowgate first start created (delete this file once you have copied them):', ...secrets, '', ...where, ''].join('\n'), { mode: 0o600 });
  logger.info({ file, email: seed.email, clientId: seed.clientId }, 'first start: the admin password and demo client secret are in the file named here (mode 0600)');
}

/** Logs a fatal error, writes the buffered log and exits: nothing the log holds is lost on a crash. */
function onFatal(logger: Logger) {
  return (err: unknown) => {
    logger.fatal({ err }, 'fatal error; exiting');
    flushLogsSync(logger);
    process.exit(1);
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One process serving the port: the default, and what each cluster worker runs. */
async function runServer(config: Config, logger: Logger, tracing: Tracing | undefined, opts: { seed: boolean }): Promise<void> {
  const { startServer } = await import('./server.js');
  // Handlers go in before startup: a SIGTERM that arrives while starting waits for the start to
  // finish and then shuts down cleanly, instead of killing the process half-way.
  let running: RunningServer | undefined;
  let stopping = false;
  let delay = config.shutdown.delayMs;
  const stop = async () => {
    try {
      // Unready first, then keep serving while balancers notice, then drain (src/http/drain.ts).
      running!.beginDrain();
      if (delay > 0) {
        logger.info({ delayMs: delay }, 'draining: unready, still serving while balancers notice');
        await sleep(delay);
      }
      await running!.close();
      await tracing?.shutdown().catch(() => {});
      logger.info('stopped');
      flushLogsSync(logger);
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      flushLogsSync(logger);
      process.exit(1);
    }
  };
  const onSignal = (signal: string) => {
    if (stopping) {
      // A second signal: stop waiting for balancers (the drain itself still answers what it has).
      delay = 0;
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    if (running) void stop();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  running = await startServer(config, logger);
  if (stopping) return stop();
  // Seed before announcing, so "listening" means the first-start data is there too.
  const seed = opts.seed ? await seedOnce(config, running.services) : undefined;
  if (cluster.isPrimary) logger.info({ url: config.issuer, port: config.port, ...(running.metricsServer && { metricsPort: config.metrics.port }) }, 'Flowgate listening');
  printSeed(config, logger, seed);
}

/**
 * WORKERS=N: the primary prepares shared state once (signing keys, migrations, first-start seed),
 * then forks N workers that share the port (node:cluster distributes connections), restarts workers
 * that crash, serves the aggregated /metrics of all workers on METRICS_PORT, and on SIGTERM/SIGINT
 * asks each worker to drain.
 */
async function runPrimary(config: Config, logger: Logger): Promise<void> {
  const { buildServices } = await import('./compose/services.js');
  // Done here once, not in each worker (migrations and keys are also safe against other instances).
  const services = await buildServices(config, logger);
  let seed: DevSeed | undefined;
  try {
    seed = await seedOnce(config, services);
  } finally {
    await services.close();
  }
  const { serveClusterMetrics, startMetricsServer } = await import('./metrics/serve.js');
  serveClusterMetrics();
  const metricsServer = config.metrics.port !== undefined ? await startMetricsServer(config.metrics.port, config.metrics.host, config.metrics.token) : undefined;

  let stopping = false;
  const restarts: number[] = [];
  const alive = new Set<number>();
  const fork = () => alive.add(cluster.fork().id);
  const killAll = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  const exit = (code?: number) => {
    flushLogsSync(logger);
    process.exit(code);
  };

  cluster.on('online', (worker: Worker) => logger.info({ worker: worker.id, pid: worker.process.pid }, 'worker started'));
  let listening = 0;
  cluster.on('listening', (worker: Worker) => {
    listening += 1;
    if (listening > config.workers) logger.info({ worker: worker.id, pid: worker.process.pid }, 'replacement worker listening');
    if (listening === config.workers) {
      logger.info({ url: config.issuer, port: config.port, workers: config.workers, ...(metricsServer && { metricsPort: config.metrics.port }) }, 'Flowgate listening');
      printSeed(config, logger, seed);
      seed = undefined;
    }
  });
  cluster.on('exit', (worker: Worker, code: number | null, signal: string | null) => {
    alive.delete(worker.id);
    if (stopping) {
      if (code !== 0) process.exitCode = 1;
      if (alive.size === 0) exit();
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts.length && restarts[0] < now - 60_000) restarts.shift();
    if (restarts.length > config.http.workerMaxRestartsPerMinute) {
      logger.fatal({ pid: worker.process.pid, code, signal }, 'workers keep crashing; giving up');
      stopping = true;
      process.exitCode = 1;
      killAll('SIGTERM');
      if (alive.size === 0) exit();
      return;
    }
    logger.error({ worker: worker.id, pid: worker.process.pid, code, signal }, 'worker exited unexpectedly; starting a replacement');
    fork();
  });

  const shutdown = (signal: string) => {
    if (stopping) return killAll('SIGTERM'); // a second signal: workers skip the rest of their delay
    stopping = true;
    logger.info({ signal, workers: config.workers }, 'shutting down: asking workers to finish in-flight requests');
    metricsServer?.close();
    if (alive.size === 0) exit(0);
    killAll('SIGTERM');
    setTimeout(() => {
      logger.error('workers did not stop in time; killing them');
      killAll('SIGKILL');
      exit(1);
    }, config.shutdown.delayMs + config.shutdown.timeoutMs + PRIMARY_MARGIN_MS).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  for (let i = 0; i < config.workers; i++) fork();
}

async function main() {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  process.on('uncaughtException', onFatal(logger));
  process.on('unhandledRejection', onFatal(logger));
  if (cluster.isWorker) {
    // The primary already migrated, generated keys and seeded; a worker only serves.
    const tracing = await startTracing(config);
    return runServer(config, logger.child({ worker: cluster.worker?.id }), tracing, { seed: false });
  }
  announceMode(config, logger);
  if (config.workers > 1) return runPrimary(config, logger);
  const tracing = await startTracing(config);
  return runServer(config, logger, tracing, { seed: true });
}

main().catch((err) => {
  if (err instanceof DatabaseInUseError) {
    process.stderr.write(`Flowgate cannot start: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`Flowgate failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
