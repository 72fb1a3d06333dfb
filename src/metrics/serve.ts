import cluster from 'node:cluster';
import { timingSafeEqual, createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import { register } from './registry.js';

const REQ = 'flowgate:metrics-request';
const RES = 'flowgate:metrics-response';
export const CONTENT_TYPE = register.contentType;

let aggregator: AggregatorRegistry<typeof register.contentType> | undefined;
// prom-client answers the primary's collection requests in a worker only once an AggregatorRegistry
// exists there (its constructor installs the listener).
if (cluster.isWorker) new AggregatorRegistry();

/**
 * The exposition text for this deployment unit: with WORKERS the primary asks every worker
 * (prom-client's AggregatorRegistry sums counters and histograms, and gauges by each one's rule), so
 * one scrape answers for all workers; a worker asked on the main port forwards to the primary.
 */
export async function metricsText(): Promise<string> {
  if (cluster.isWorker) return askPrimary();
  if (aggregator) return aggregator.clusterMetrics();
  return register.metrics();
}

/** Primary of WORKERS=N: aggregates workers' metrics for /metrics, asked directly or by a worker. */
export function serveClusterMetrics(): void {
  aggregator ??= new AggregatorRegistry();
  cluster.on('message', (worker, msg: { type?: string; id?: string }) => {
    if (msg?.type !== REQ) return;
    aggregator!.clusterMetrics().then(
      (text: string) => worker.send({ type: RES, id: msg.id, text }),
      (err: Error) => worker.send({ type: RES, id: msg.id, error: err.message }),
    );
  });
}

const pending = new Map<string, { resolve: (t: string) => void; reject: (e: Error) => void }>();
let listening = false;
function askPrimary(): Promise<string> {
  if (!listening) {
    listening = true;
    process.on('message', (msg: { type?: string; id?: string; text?: string; error?: string }) => {
      if (msg?.type !== RES || !msg.id) return;
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (!p) return;
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.text ?? '');
    });
  }
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error('the primary did not answer'));
    }, 5000);
    pending.set(id, {
      resolve: (t) => (clearTimeout(timer), resolve(t)),
      reject: (e) => (clearTimeout(timer), reject(e)),
    });
    process.send!({ type: REQ, id });
  });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <METRICS_TOKEN>`, compared in constant time; any request passes without a token. */
export function metricsAuthorized(authorization: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  return !!m && timingSafeEqual(digest(m[1]), digest(token));
}

/** Writes the /metrics answer (401 without the token when one is configured). */
export function answerMetrics(req: http.IncomingMessage, res: http.ServerResponse, token: string | undefined): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('use GET\n');
    return;
  }
  if (!metricsAuthorized(req.headers.authorization, token)) {
    res.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="metrics"', 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' }).end('metrics need a bearer token\n');
    return;
  }
  metricsText().then(
    (text) => res.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
    () => res.writeHead(503, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' }).end('metrics unavailable\n'),
  );
}

/** The separate metrics listener (METRICS_PORT): /metrics only. */
export async function startMetricsServer(port: number, host: string, token: string | undefined): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') return answerMetrics(req, res, token);
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
