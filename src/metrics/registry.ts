/**
 * Every Prometheus series Flowgate exports, created once per process in prom-client's global
 * registry (the one prom-client's cluster support collects from each worker), and the small typed
 * functions the rest of the code calls. Nothing outside this folder imports prom-client: a caller
 * records "an introspection of an API key answered inactive because it expired", and the label
 * names, bucket layout and cardinality limits are decided here.
 *
 * Labels take values from small fixed sets only (route templates, grant types, credential kinds,
 * outcomes): never ids, client ids, paths with ids or anything a caller chooses freely.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, register } from 'prom-client';

export { register };

/** Seconds; fine at the bottom, where the introspection hot path lives (sub-millisecond to tens of ms). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STORE_BUCKETS = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

let defaultsStarted = false;
/** Process metrics (CPU, memory, heap, GC, event-loop lag, handles); once per process. */
export function collectProcessMetrics(): void {
  if (defaultsStarted) return;
  defaultsStarted = true;
  collectDefaultMetrics({ eventLoopMonitoringPrecision: 20 });
}

// --- HTTP -----------------------------------------------------------------------------------------

export const httpDuration = new Histogram({
  name: 'flowgate_http_request_duration_seconds',
  help: 'HTTP requests by route template, method and status, with their latency (the _count is the request count)',
  labelNames: ['route', 'method', 'status'] as const,
  buckets: LATENCY_BUCKETS,
});

export function recordHttpRequest(route: string, method: string, status: number, seconds: number): void {
  httpDuration.observe({ route, method: HTTP_METHODS.has(method) ? method : 'OTHER', status: String(status) }, seconds);
}
const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

export const draining = new Gauge({
  name: 'flowgate_draining',
  help: '1 while this process drains for shutdown (unready, answering what it already received)',
  aggregator: 'max',
});

// --- OAuth and credentials ------------------------------------------------------------------------

const tokensIssued = new Counter({
  name: 'flowgate_tokens_issued_total',
  help: 'Successful token endpoint responses by grant type',
  labelNames: ['grant_type'] as const,
});
const tokenErrors = new Counter({
  name: 'flowgate_token_errors_total',
  help: 'Token endpoint errors by grant type and OAuth error code',
  labelNames: ['grant_type', 'error'] as const,
});
const GRANT_TYPES = new Set([
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:openid:params:grant-type:ciba',
]);
const grantLabel = (g: unknown) => (typeof g === 'string' && GRANT_TYPES.has(g) ? g : 'other');
const OAUTH_ERRORS = new Set([
  'invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type',
  'invalid_scope', 'invalid_target', 'slow_down', 'access_denied', 'server_error', 'invalid_dpop_proof', 'use_dpop_nonce',
]);

export function recordTokenIssued(grantType: unknown): void {
  tokensIssued.inc({ grant_type: grantLabel(grantType) });
}
export function recordTokenError(grantType: unknown, error: unknown): void {
  tokenErrors.inc({ grant_type: grantLabel(grantType), error: typeof error === 'string' && OAUTH_ERRORS.has(error) ? error : 'other' });
}

const introspections = new Counter({
  name: 'flowgate_introspections_total',
  help: 'Introspection answers by credential type, outcome (active, inactive, refused, error) and inactive reason',
  labelNames: ['credential_type', 'outcome', 'reason'] as const,
});
const CREDENTIAL_TYPES = new Set(['api_key', 'access_token', 'jwt_access_token', 'refresh_token', 'service_jwt', 'exchanged_token', 'client_credentials']);
const INACTIVE_REASONS = new Set(['expired', 'revoked', 'rolled', 'query_key_disabled', 'unknown', 'not_found', 'invalid']);

/** One introspection answer; `type` and `reason` outside the known sets are counted as "other". */
export function recordIntrospection(type: unknown, outcome: 'active' | 'inactive' | 'refused' | 'error', reason?: unknown): void {
  introspections.inc({
    credential_type: typeof type === 'string' && CREDENTIAL_TYPES.has(type) ? type : type === undefined ? 'unknown' : 'other',
    outcome,
    reason: reason === undefined ? '' : typeof reason === 'string' && INACTIVE_REASONS.has(reason) ? reason : 'other',
  });
}

/** The introspection endpoint's reply (RFC 7662 §2.2 body, or an RFC 6749 §5.2 error), as sent. */
export function recordIntrospectionReply(status: number, body: Record<string, unknown>): void {
  if (status >= 500) return recordIntrospection(undefined, 'error');
  if (status !== 200) return recordIntrospection(undefined, 'refused', body.error);
  if (body.active === true) return recordIntrospection(body.credential_type, 'active');
  recordIntrospection(body.credential_type, 'inactive', body.inactive_reason);
}

/** The in-process caches' own counters (storage/cache.ts), read at scrape time. */
type CacheStats = { name: string; size: number; hits: number; misses: number };
// One reader per server in this process (tests run several): their figures add up.
const cacheReaders = new Set<() => CacheStats[]>();
export function observeCaches(read: () => CacheStats[]): () => void {
  cacheReaders.add(read);
  return () => cacheReaders.delete(read);
}
function cacheStats(): CacheStats[] | undefined {
  if (cacheReaders.size === 0) return undefined;
  const by = new Map<string, CacheStats>();
  for (const read of cacheReaders) {
    for (const c of read()) {
      const t = by.get(c.name) ?? { name: c.name, size: 0, hits: 0, misses: 0 };
      by.set(c.name, { name: c.name, size: t.size + c.size, hits: t.hits + c.hits, misses: t.misses + c.misses });
    }
  }
  return [...by.values()];
}
new Counter({
  name: 'flowgate_cache_lookups_total',
  help: 'In-process cache look-ups by cache and result (hit, miss)',
  labelNames: ['cache', 'result'] as const,
  collect() {
    const stats = cacheStats();
    if (!stats) return;
    this.reset();
    for (const c of stats) {
      this.inc({ cache: c.name, result: 'hit' }, c.hits);
      this.inc({ cache: c.name, result: 'miss' }, c.misses);
    }
  },
});
new Gauge({
  name: 'flowgate_cache_entries',
  help: 'Entries held by each in-process cache',
  labelNames: ['cache'] as const,
  collect() {
    const stats = cacheStats();
    if (!stats) return;
    this.reset();
    for (const c of stats) this.set({ cache: c.name }, c.size);
  },
});

const signIns = new Counter({
  name: 'flowgate_sign_ins_total',
  help: 'Password sign-ins (OAuth sign-in page and dashboard) by result',
  labelNames: ['result'] as const,
});
export function recordSignIn(ok: boolean): void {
  signIns.inc({ result: ok ? 'success' : 'failure' });
}

// --- Rate limits ----------------------------------------------------------------------------------

const rateLimitChecks = new Counter({
  name: 'flowgate_ratelimit_checks_total',
  help: 'Rate-limit checks by policy and result',
  labelNames: ['policy', 'result'] as const,
});
const degradedChecks = new Counter({
  name: 'flowgate_ratelimit_degraded_checks_total',
  help: 'Checks decided without Redis (local estimate or fail-closed)',
  labelNames: ['mode'] as const,
});
const POLICIES = new Set(['token', 'management', 'loginIp', 'loginAccount', 'read', 'write', 'execute', 'webhook']);
export function recordRateLimitDecision(policy: string, allowed: boolean, source?: string): void {
  // Categories are deployment-defined words (bounded by configuration); anything else is "other".
  rateLimitChecks.inc({ policy: POLICIES.has(policy) || /^[a-z][a-z0-9_]{0,31}$/.test(policy) ? policy : 'other', result: allowed ? 'allowed' : 'limited' });
  if (source === 'local' || source === 'closed') degradedChecks.inc({ mode: source });
}

/** The limiter's store state, read at scrape time. */
export function observeRateLimitStore(read: () => { store: string; state: string; outages?: number }): void {
  rateLimitStoreReader = read;
}
let rateLimitStoreReader: (() => { store: string; state: string; outages?: number }) | undefined;
new Gauge({
  name: 'flowgate_ratelimit_store_up',
  help: '1 when the shared rate-limit store answers, 0 while degraded',
  labelNames: ['store'] as const,
  aggregator: 'min',
  collect() {
    this.reset();
    const s = rateLimitStoreReader?.();
    if (s) this.set({ store: s.store }, s.state === 'up' ? 1 : 0);
  },
});
new Gauge({
  name: 'flowgate_ratelimit_store_outages',
  help: 'Rate-limit store outages since start',
  labelNames: ['store'] as const,
  collect() {
    this.reset();
    const s = rateLimitStoreReader?.();
    if (s) this.set({ store: s.store }, s.outages ?? 0);
  },
});

// --- Webhooks -------------------------------------------------------------------------------------

const webhookDeliveries = new Counter({
  name: 'flowgate_webhook_deliveries_total',
  help: 'Webhook delivery attempts by result (delivered, http_error, network_error, refused)',
  labelNames: ['result'] as const,
});
export function recordWebhookDelivery(r: { ok: boolean; status: number | null; error?: string | null }): void {
  const result = r.ok ? 'delivered' : r.status !== null ? 'http_error' : r.error?.startsWith('refused') ? 'refused' : 'network_error';
  webhookDeliveries.inc({ result });
}

// --- Stores ---------------------------------------------------------------------------------------

export const dbQueryDuration = new Histogram({
  name: 'flowgate_db_query_duration_seconds',
  help: 'PostgreSQL queries by outcome (ok, error, timeout), with their latency',
  labelNames: ['outcome'] as const,
  buckets: STORE_BUCKETS,
});
let poolCollector: (() => void) | undefined;
export function onPoolScrape(fn: () => void): void {
  poolCollector = fn;
}
export const dbPool = new Gauge({
  name: 'flowgate_db_pool_connections',
  help: 'PostgreSQL pool connections of this process by state (total, idle, waiting requests) and the configured maximum',
  labelNames: ['state'] as const,
  collect() {
    poolCollector?.();
  },
});
export const redisCommandDuration = new Histogram({
  name: 'flowgate_redis_command_duration_seconds',
  help: 'Redis commands by outcome (ok, error), with their latency',
  labelNames: ['outcome'] as const,
  buckets: STORE_BUCKETS,
});
export const redisErrors = new Counter({
  name: 'flowgate_redis_connection_errors_total',
  help: 'Redis connection errors (refused, reset, timed out) seen by the client',
});

// --- Build and keys -------------------------------------------------------------------------------

export const buildInfo = new Gauge({
  name: 'flowgate_build_info',
  help: 'Always 1; the labels say which build and runtime this is',
  labelNames: ['version', 'node_version', 'commit'] as const,
  aggregator: 'first',
});

export const signingKeyAge = new Gauge({
  name: 'flowgate_signing_key_age_seconds',
  help: 'Age of the active signing key per algorithm (rotate before it grows past your policy)',
  labelNames: ['alg'] as const,
  aggregator: 'max',
});
