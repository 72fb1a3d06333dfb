import { z } from 'zod';

const positiveInt = z.coerce.number().int().positive();

const DURATION = /^(\d+)\s*(s|m|h|d)$/;
const UNIT = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/**
 * Bounds of any limit, from the configuration or a tenant's override (docs/rate-limits.md). The
 * sliding log keeps one entry per admitted request for a whole window, so `limit` bounds the memory a
 * single budget may take in Redis; `window` keeps every time computation an exact integer of
 * milliseconds. Without them one tenant's `window: 1e300` made the limiter's script fail.
 */
export const MAX_RATE_LIMIT = 1_000_000;
export const MAX_RATE_WINDOW_SECONDS = 30 * 86400;

/** A rate limit: `limit` requests in any `window` seconds (a number, or "30s", "1m", "1h", "1d"). */
export const rateLimitSchema = z.object({
  limit: z
    .number({ error: 'limit must be a number' })
    .int('limit must be a whole number')
    .nonnegative('limit must not be negative (0 refuses every request)')
    .max(MAX_RATE_LIMIT, `limit must be at most ${MAX_RATE_LIMIT}`),
  window: z
    .union([z.number(), z.string()], { error: 'window must be seconds or a duration such as "1m" or "1h"' })
    .transform((v, ctx) => {
      const m = typeof v === 'string' ? DURATION.exec(v.trim()) : null;
      const secs = typeof v === 'number' ? v : m ? Number(m[1]) * UNIT[m[2] as keyof typeof UNIT] : NaN;
      if (!Number.isInteger(secs) || secs <= 0) {
        ctx.addIssue({ code: 'custom', message: `window must be a positive whole number of seconds or a duration such as "1m" or "1h" (got ${JSON.stringify(v).slice(0, 40)}; a zero window cannot be enforced)` });
        return z.NEVER;
      }
      if (secs > MAX_RATE_WINDOW_SECONDS) {
        ctx.addIssue({ code: 'custom', message: `window must be at most 30 days (${MAX_RATE_WINDOW_SECONDS} seconds)` });
        return z.NEVER;
      }
      return secs;
    }),
});

/** Limits by category (read, write, execute, webhook, or a deployment's own); partial for overrides. */
export const categoryLimitsSchema = z.record(z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'category names are lowercase words, e.g. read'), rateLimitSchema);

const planSchema = z.object({
  // null = unlimited
  maxApiKeys: z.number().int().nonnegative().nullable(),
  /** Per-credential limits by category for organizations on this plan; absent: rateLimits.defaults. */
  rateLimits: categoryLimitsSchema.optional(),
});

/** `host:port`, or `[v6 address]:port`. */
const hostPort = z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/, 'each entry must be host:port');

/**
 * How Flowgate reaches Redis beyond `REDIS_URL`: Sentinel or Cluster, credentials kept out of URLs
 * (so they can come from a secret), and TLS for the modes that have no rediss:// URL. Exactly one of
 * `redisUrl`, `redis.sentinels`, `redis.clusterNodes` chooses the mode (see redisMode below).
 */
const redisSchema = z.object({
  /** Redis Cluster: seed nodes; the client discovers the rest (CLUSTER SLOTS). */
  clusterNodes: z.array(hostPort).min(1).optional(),
  /** Redis Sentinel: the sentinels to ask for the current master of `sentinelName`. */
  sentinels: z.array(hostPort).min(1).optional(),
  sentinelName: z.string().min(1).optional(),
  /** ACL user and password on the data nodes (every mode; with REDIS_URL, instead of its userinfo). */
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  /** TLS to the data nodes in Sentinel and Cluster modes (a standalone Redis says so with rediss://). */
  tls: z.boolean(),
  /** PEM file of the certificate authorities to trust for Redis TLS; absent: the system's. */
  tlsCaFile: z.string().min(1).optional(),
  /** Credentials and TLS for the sentinels themselves, when they differ from the data nodes'. */
  sentinelUsername: z.string().min(1).optional(),
  sentinelPassword: z.string().min(1).optional(),
  sentinelTls: z.boolean(),
});

/** Every setting Flowgate reads. Environment variables override `config/default.json`. */
export const configSchema = z.object({
  env: z.enum(['development', 'production', 'test']),
  port: z.coerce.number().int().min(0).max(65535),
  host: z.string().min(1),
  issuer: z.url(),
  apiAudience: z.url(),
  databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  dataDir: z.string().min(1),
  redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL').optional(),
  redisPrefix: z.string(),
  redis: redisSchema,
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  cookieSecrets: z.array(z.string().min(32, 'each cookie secret needs at least 32 characters')).min(1),
  trustProxy: z.boolean(),
  keysDir: z.string().min(1),
  bodyLimit: z.string().regex(/^\d+(kb|mb|b)$/i),
  tokens: z.object({
    accessTokenTtl: positiveInt,
    authorizationCodeTtl: positiveInt,
    refreshTokenTtl: positiveInt,
    clientCredentialsTtl: positiveInt,
    sessionTtl: positiveInt,
    interactionTtl: positiveInt,
    grantTtl: positiveInt,
    idTokenTtl: positiveInt,
    /**
     * Tokens exchanged from API keys (RFC 8693). Workflow services may verify them locally, where a
     * revocation reaches them only when they expire: at most five minutes.
     */
    exchangedTokenTtl: positiveInt.max(300, 'at most 300 seconds: local verifiers see a revocation only at expiry'),
  }),
  apiKeys: z.object({
    prefix: z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,9}[-_]$/, 'must be 1-10 letters/digits ending in "-" or "_", e.g. sk- or wfk_'),
    pepper: z.string().min(16, 'needs at least 16 characters'),
    defaultRollGraceSeconds: z.coerce.number().int().nonnegative(),
  }),
  plans: z.record(z.string(), planSchema),
  /** Webhook delivery. */
  webhooks: z.object({
    /** Delays in seconds before each retry; attempts = length + 1. */
    retrySchedule: z.array(z.number().int().nonnegative()).min(1, 'needs at least one delay'),
    pollIntervalMs: positiveInt,
    /** One delivery attempt gives up after this long; at most this much of the answer is kept. */
    requestTimeoutMs: positiveInt,
    maxResponseBytes: positiveInt,
    /** An endpoint failing without a success for this long is disabled. */
    disableAfterSeconds: positiveInt,
    /** A claimed delivery is another instance's to retry after this long (a dispatcher died mid-delivery). */
    leaseMs: positiveInt,
    batchSize: positiveInt,
    /** How often keys are scanned for expiry notices (api_key.expiring, api_key.expired). */
    expiryScanIntervalMs: positiveInt,
    /** Secret-scanner public keys (PEM, ECDSA P-256) by key identifier, for leaked-key reports. */
    scannerPublicKeys: z.record(z.string(), z.string()),
  }),
  /** Requests Flowgate makes itself: webhook deliveries, clients' jwks_uri (src/outbound/url-policy.ts). */
  outbound: z.object({
    /** Development and tests only: lifts the SSRF guard (private addresses, plain http). */
    allowPrivateNetworks: z.boolean(),
  }),
  /** Rate limits. */
  rateLimits: z.object({
    enabled: z.boolean(),
    /** Redis unreachable: 'open' serves with a per-process estimate, 'closed' refuses. */
    failMode: z.enum(['open', 'closed'], { error: 'must be "open" or "closed"' }),
    /** A Redis check slower than this counts as an outage for the request. */
    timeoutMs: positiveInt,
    /** Per-credential limits by category when the plan names none (per minute). */
    defaults: categoryLimitsSchema,
    /** Flowgate's own endpoints: the token endpoint per authenticated client, the management API per credential. */
    token: rateLimitSchema,
    /** Failed client authentications at the token endpoint, per caller address and per address + client id. */
    tokenFailuresIp: rateLimitSchema,
    tokenFailuresClient: rateLimitSchema,
    management: rateLimitSchema,
    /** Failed sign-ins: strict per client IP, lenient and short per account (an attacker cannot lock a victim out for long). */
    loginIp: rateLimitSchema,
    loginAccount: rateLimitSchema,
    /** Refused credentials at Flowgate's API, per client address (guessing keys or tokens). */
    authFailures: rateLimitSchema,
  }),
  /**
   * In-process caches (credentials, clients, memberships, key rows). Changes reach every instance
   * through the invalidation channel in milliseconds; `ttlMs` is the one staleness bound that holds
   * even when no message arrives at all.
   */
  caches: z.object({
    ttlMs: positiveInt.max(300_000, 'at most 300000 (5 minutes): it bounds how stale a revocation can be without pub/sub'),
    negativeTtlMs: positiveInt.max(300_000),
    maxEntries: positiveInt.min(100),
  }),
  /** The HTTP server and the WORKERS primary. */
  http: z.object({
    /** Longer than a balancer's idle timeout (60 s for most), so the balancer closes idle connections first. */
    keepAliveTimeoutMs: positiveInt,
    requestTimeoutMs: positiveInt,
    /** Workers dying more often than this in a minute mean a crash loop: the primary stops. */
    workerMaxRestartsPerMinute: positiveInt,
  }),
  accounts: z.object({
    invitationTtlSeconds: positiveInt,
    dashboardSessionIdleSeconds: positiveInt,
    dashboardSessionAbsoluteSeconds: positiveInt,
    /** How often expired durable OAuth artifacts (grants, sessions, refresh tokens) are deleted. */
    artifactSweepIntervalMs: positiveInt,
  }),
  seedDevData: z.boolean(),
  /** Processes serving the port (node:cluster); >1 needs PostgreSQL and Redis (shared state). */
  workers: z.coerce.number().int().min(1, 'must be at least 1').max(64, 'must be at most 64'),
  /** PostgreSQL client settings, per process (docs/operations.md sizes them against max_connections). */
  database: z.object({
    poolSize: z.coerce.number().int().min(1, 'must be at least 1').max(500, 'must be at most 500'),
    connectTimeoutMs: positiveInt,
    /** Server-side statement_timeout, and the client-side bound on waiting for any answer (plus a margin). */
    statementTimeoutMs: positiveInt,
    idleTimeoutMs: positiveInt,
    /** Behind PgBouncer (transaction mode): no startup parameters; put timeouts on the role instead. */
    pgbouncer: z.boolean(),
  }),
  /** SIGTERM: unready at once, keep serving for delayMs, then drain for at most timeoutMs. */
  shutdown: z.object({
    delayMs: z.coerce.number().int().min(0, 'must not be negative'),
    timeoutMs: positiveInt,
  }),
  /** /metrics: on its own port (default) or, when port is unset, on the main port behind a bearer token. */
  metrics: z.object({
    port: z.coerce.number().int().min(0).max(65535).optional(),
    host: z.string().min(1),
    token: z.string().min(16, 'needs at least 16 characters').optional(),
  }),
  /** OpenTelemetry traces, off unless an OTLP/HTTP endpoint is set. */
  tracing: z.object({
    otlpEndpoint: z.url().optional(),
    serviceName: z.string().min(1),
    sampleRatio: z.coerce.number().min(0).max(1),
  }),
  /** How often each process writes API keys' last_used_at (ms). */
  lastUsedFlushMs: positiveInt,
});

export type Config = z.infer<typeof configSchema>;
export type RedisConfig = z.infer<typeof redisSchema>;

export type RedisMode = 'standalone' | 'sentinel' | 'cluster';

/** Which Redis the configuration names; null: none (the in-process store of the single-process mode). */
export function redisMode(c: Pick<Config, 'redisUrl' | 'redis'>): RedisMode | null {
  if (c.redis.clusterNodes) return 'cluster';
  if (c.redis.sentinels) return 'sentinel';
  return c.redisUrl ? 'standalone' : null;
}
export type PlanConfig = z.infer<typeof planSchema>;
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;
export type RateLimitsConfig = Config['rateLimits'];
