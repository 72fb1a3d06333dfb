import http from 'node:http';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { buildApp } from './compose/app.js';
import { buildServices, type Services } from './compose/services.js';
import { sweepExpiredArtifacts } from './oauth/adapter.js';

export interface RunningServer {
  services: Services;
  server: http.Server;
  url: string;
  /** Stop accepting, finish in-flight requests, close pools. */
  close(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const services = await buildServices(config, logger);
  const app = buildApp(services);
  const server = http.createServer(app.handle);
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  if (config.outbound.allowPrivateNetworks) logger.warn('OUTBOUND_ALLOW_PRIVATE_NETWORKS is on: webhooks and clients\' jwks_uri may target private and loopback addresses (development and tests only)');
  services.dispatcher.start();
  const sweeper = setInterval(() => void sweepExpiredArtifacts(services.ds).catch((err) => logger.warn({ err }, 'sweeping expired OAuth artifacts failed')), 10 * 60_000);
  sweeper.unref();
  let closing: Promise<void> | undefined;
  return {
    services,
    server,
    url: `http://127.0.0.1:${port}`,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // In-flight requests get a grace period, then their sockets are closed.
          setTimeout(() => server.closeAllConnections(), 10_000).unref();
        });
        await services.close();
      })();
      return closing;
    },
  };
}
