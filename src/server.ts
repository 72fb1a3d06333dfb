import cluster from 'node:cluster';
import http from 'node:http';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { packageVersion } from './config/load.js';
import { buildApp } from './compose/app.js';
import { buildServices, type Services } from './compose/services.js';
import { sweepExpiredArtifacts } from './oauth/adapter.js';
import { readKeys } from './oauth/signing-keys.js';
import { Drain } from './http/drain.js';
import { logRequest } from './http/logger.js';
import { ReadinessProbe } from './health/readiness.js';
import { routeTemplate } from './metrics/routes.js';
import { answerMetrics, startMetricsServer } from './metrics/serve.js';
import { observeDatabasePool } from './metrics/stores.js';
import { buildInfo, collectProcessMetrics, draining as drainingGauge, observeCaches, observeRateLimitStore, recordHttpRequest, recordTokenError, recordTokenIssued, signingKeyAge } from './metrics/registry.js';
import { traceRequest } from './tracing/request.js';

export interface RunningServer {
  services: Services;
  server: http.Server;
  url: string;
  /** The separate /metrics listener (METRICS_PORT), when this process runs one. */
  metricsServer?: http.Server;
  /** Turns /readyz unready and marks every response `Connection: close`; serving goes on. */
  beginDrain(): void;
  /** Drain (see Drain), wait for in-flight requests, stop background work, flush, close pools. */
  close(): Promise<void>;
}

const version = packageVersion();

/**
 * The HTTP server of one process. Operational endpoints are answered here, before the app: `/healthz`
 * (liveness), `/readyz` (what this instance can serve; health/readiness.ts) and `/metrics` (main port
 * only when no METRICS_PORT is configured, and then behind METRICS_TOKEN).
 */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const services = await buildServices(config, logger);
  const app = buildApp(services);
  collectProcessMetrics();
  instrumentServices(services, config);
  const probe = new ReadinessProbe(services.ds, services.kv, () => ({ rate_limiter: services.rateLimits.state() }));
  // /metrics on the main port only when no metrics port is configured, and then only with a token.
  const metricsOnMain = config.metrics.port === undefined && !!config.metrics.token;

  let drain: Drain | undefined = undefined;
  const server = http.createServer((req, res) => {
    drain!.track(req, res);
    const start = performance.now();
    res.once('finish', () => recordHttpRequest(routeTemplate(req.url), req.method ?? 'GET', res.statusCode, (performance.now() - start) / 1000));
    traceRequest(req, res, () => {
      const path = (req.url ?? '/').split('?', 1)[0];
      if (path === '/healthz') return json(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        void probe.check(drain!.draining).then((r) => {
          json(res, r.httpStatus, r.body);
          logProbe(logger, req, res, start);
        });
        return;
      }
      if (path === '/metrics' && metricsOnMain) return answerMetrics(req, res, config.metrics.token);
      app.handle(req, res);
    });
  });
  drain = new Drain(server);
  server.keepAliveTimeout = config.http.keepAliveTimeoutMs;
  server.requestTimeout = config.http.requestTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // One metrics listener per deployment unit: with WORKERS the primary runs it (main.ts).
  const metricsServer = config.metrics.port !== undefined && cluster.isPrimary ? await startMetricsServer(config.metrics.port, config.metrics.host, config.metrics.token) : undefined;
  if (config.outbound.allowPrivateNetworks) logger.warn('OUTBOUND_ALLOW_PRIVATE_NETWORKS is on: webhooks and clients\' jwks_uri may target private and loopback addresses (development and tests only)');
  services.dispatcher.start();
  const sweeper = setInterval(() => void sweepExpiredArtifacts(services.ds).catch((err) => logger.warn({ err }, 'sweeping expired OAuth artifacts failed')), config.accounts.artifactSweepIntervalMs);
  sweeper.unref();
  const unobservePool = observeDatabasePool(services.ds);
  const unobserveCaches = observeCaches(() => services.caches.stats());
  let closing: Promise<void> | undefined;
  const beginDrain = () => {
    drain!.begin();
    drainingGauge.set(1);
  };
  return {
    services,
    server,
    metricsServer,
    url: `http://127.0.0.1:${port}`,
    beginDrain,
    close() {
      closing ??= (async () => {
        beginDrain();
        clearInterval(sweeper);
        await drain!.finish(config.shutdown.timeoutMs);
        unobservePool();
        unobserveCaches();
        await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
        metricsServer?.closeAllConnections();
        await services.close();
      })();
      return closing;
    },
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function logProbe(logger: Logger, req: http.IncomingMessage, res: http.ServerResponse, start: number): void {
  logRequest(logger, start, { method: req.method, url: req.url ?? '/', status: res.statusCode, ip: req.socket.remoteAddress });
}

/** Series read from the services: token issuance (provider events), pools, limiter, keys, build. */
function instrumentServices(s: Services, config: Config): void {
  const events = s.provider as unknown as NodeJS.EventEmitter;
  // oidc-provider emits grant.success / grant.error for every token endpoint response, whatever the
  // grant (built-in or registered with registerGrantType).
  events.on('grant.success', (ctx: { oidc?: { params?: { grant_type?: unknown } } }) => recordTokenIssued(ctx.oidc?.params?.grant_type));
  events.on('grant.error', (ctx: { oidc?: { params?: { grant_type?: unknown } } }, err: { error?: unknown }) => recordTokenError(ctx.oidc?.params?.grant_type, err?.error));
  observeRateLimitStore(() => s.rateLimits.state() as { store: string; state: string; outages?: number });
  buildInfo.set({ version, node_version: process.version, commit: process.env.FLOWGATE_COMMIT ?? 'unknown' }, 1);
  const keysDir = config.keysDir;
  const age = () => {
    const now = Date.now() / 1000;
    signingKeyAge.reset();
    for (const k of readKeys(keysDir)) if (!k.retired_at) signingKeyAge.set({ alg: k.alg }, Math.max(0, now - k.created_at));
  };
  age();
  setInterval(age, 60_000).unref();
}
