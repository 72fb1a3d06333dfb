import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, redisMode, type Config } from './schema.js';

/** The directory holding config/default.json: two levels up from src/config, three from dist/src/config. */
export const projectRoot = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'config/default.json')) && existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '../..');
  }
}

/** package.json's version, for build info and traces. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Which environment variable feeds which setting: used to name the culprit when validation fails. */
const ENV_NAMES: Record<string, string> = {
  env: 'NODE_ENV',
  port: 'PORT',
  host: 'HOST',
  issuer: 'ISSUER',
  apiAudience: 'API_AUDIENCE',
  databaseUrl: 'DATABASE_URL',
  dataDir: 'DATA_DIR',
  redisUrl: 'REDIS_URL',
  redisPrefix: 'REDIS_PREFIX',
  'redis.clusterNodes': 'REDIS_CLUSTER_NODES',
  'redis.sentinels': 'REDIS_SENTINELS',
  'redis.sentinelName': 'REDIS_SENTINEL_NAME',
  'redis.username': 'REDIS_USERNAME',
  'redis.password': 'REDIS_PASSWORD',
  'redis.tls': 'REDIS_TLS',
  'redis.tlsCaFile': 'REDIS_TLS_CA_FILE',
  'redis.sentinelUsername': 'REDIS_SENTINEL_USERNAME',
  'redis.sentinelPassword': 'REDIS_SENTINEL_PASSWORD',
  'redis.sentinelTls': 'REDIS_SENTINEL_TLS',
  logLevel: 'LOG_LEVEL',
  cookieSecrets: 'COOKIE_SECRETS',
  trustProxy: 'TRUST_PROXY',
  keysDir: 'KEYS_DIR',
  bodyLimit: 'BODY_LIMIT',
  'tokens.accessTokenTtl': 'ACCESS_TOKEN_TTL',
  'tokens.refreshTokenTtl': 'REFRESH_TOKEN_TTL',
  'tokens.authorizationCodeTtl': 'AUTHORIZATION_CODE_TTL',
  'tokens.clientCredentialsTtl': 'CLIENT_CREDENTIALS_TTL',
  'tokens.sessionTtl': 'SESSION_TTL',
  'apiKeys.prefix': 'API_KEY_PREFIX',
  'apiKeys.pepper': 'API_KEY_PEPPER',
  'apiKeys.defaultRollGraceSeconds': 'API_KEY_ROLL_GRACE_SECONDS',
  'webhooks.retrySchedule': 'WEBHOOK_RETRY_SCHEDULE',
  'outbound.allowPrivateNetworks': 'OUTBOUND_ALLOW_PRIVATE_NETWORKS',
  'webhooks.pollIntervalMs': 'WEBHOOK_POLL_INTERVAL_MS',
  'webhooks.scannerPublicKeys': 'SECRET_SCANNER_PUBLIC_KEYS',
  'rateLimits.enabled': 'RATE_LIMIT_ENABLED',
  'rateLimits.failMode': 'RATE_LIMIT_FAIL_MODE',
  'rateLimits.timeoutMs': 'RATE_LIMIT_TIMEOUT_MS',
  'caches.ttlMs': 'CACHE_TTL_MS',
  'caches.maxEntries': 'CACHE_MAX_ENTRIES',
  seedDevData: 'SEED_DEV_DATA',
  workers: 'WORKERS',
  'database.poolSize': 'DATABASE_POOL_SIZE',
  'database.connectTimeoutMs': 'DATABASE_CONNECT_TIMEOUT_MS',
  'database.statementTimeoutMs': 'DATABASE_STATEMENT_TIMEOUT_MS',
  'database.idleTimeoutMs': 'DATABASE_IDLE_TIMEOUT_MS',
  'database.pgbouncer': 'DATABASE_PGBOUNCER',
  'shutdown.delayMs': 'SHUTDOWN_DELAY_MS',
  'shutdown.timeoutMs': 'SHUTDOWN_TIMEOUT_MS',
  'metrics.port': 'METRICS_PORT',
  'metrics.host': 'METRICS_HOST',
  'metrics.token': 'METRICS_TOKEN',
  'tracing.otlpEndpoint': 'OTEL_EXPORTER_OTLP_ENDPOINT',
  'tracing.serviceName': 'OTEL_SERVICE_NAME',
  'tracing.sampleRatio': 'OTEL_TRACES_SAMPLER_ARG',
  lastUsedFlushMs: 'API_KEY_LAST_USED_FLUSH_MS',
};

export class ConfigError extends Error {}

/** A JSON object from an environment variable; anything else is left for the schema to name. */
function jsonObject(v: string | undefined): unknown {
  if (v === undefined || v === '') return undefined;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

type Env = Record<string, string | undefined>;

function bool(v: string | undefined): boolean | string | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  return v; // left as a string so the schema names it
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** A comma-separated list (`host:port,host:port`); blanks around entries ignored. */
function list(v: string | undefined): string[] | undefined {
  return nonEmpty(v)
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Development secrets are generated once and kept under the data directory so that sessions
 * survive restarts of the single-process mode. Production must set them explicitly.
 */
function devSecrets(dataDir: string): { cookie: string; pepper: string } {
  const file = path.join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  mkdirSync(dataDir, { recursive: true });
  const secrets = { cookie: randomBytes(32).toString('base64url'), pepper: randomBytes(32).toString('base64url') };
  writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
  return secrets;
}

/** Secrets that may come from a file (`<NAME>_FILE`, as Docker and Kubernetes secrets are mounted). */
export const FILE_VARIABLES = ['COOKIE_SECRETS', 'API_KEY_PEPPER', 'DATABASE_URL', 'REDIS_URL', 'METRICS_TOKEN', 'SECRET_SCANNER_PUBLIC_KEYS'] as const;

/**
 * `NAME_FILE=/run/secrets/x` reads NAME from that file (one trailing newline dropped). Setting both
 * is refused: which one wins would be a guess.
 */
function withFileSecrets(env: Env): Env {
  const out: Env = { ...env };
  const problems: string[] = [];
  for (const name of FILE_VARIABLES) {
    const file = nonEmpty(env[`${name}_FILE`]);
    if (!file) continue;
    if (nonEmpty(env[name])) {
      problems.push(`  ${name}_FILE: ${name} is set too; set only one of them`);
      continue;
    }
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      problems.push(`  ${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (problems.length) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  return out;
}

/** The one place that reads `process.env` (or the env given) and `config/default.json`. */
export function loadConfig(given: Env = process.env): Config {
  const env = withFileSecrets(given);
  const defaults = JSON.parse(readFileSync(path.join(projectRoot, 'config/default.json'), 'utf8'));
  const nodeEnv = nonEmpty(env.NODE_ENV) ?? 'development';
  const port = nonEmpty(env.PORT) ?? defaults.port;
  const issuer = nonEmpty(env.ISSUER)?.replace(/\/$/, '') ?? `http://localhost:${port}`;
  const dataDir = path.resolve(projectRoot, nonEmpty(env.DATA_DIR) ?? defaults.dataDir);
  const production = nodeEnv === 'production';
  const needDev = !production && (!nonEmpty(env.COOKIE_SECRETS) || !nonEmpty(env.API_KEY_PEPPER));
  const dev = needDev ? devSecrets(dataDir) : undefined;

  const raw = {
    env: nodeEnv,
    port,
    host: nonEmpty(env.HOST) ?? defaults.host,
    issuer,
    apiAudience: nonEmpty(env.API_AUDIENCE) ?? `${issuer}/api`,
    databaseUrl: nonEmpty(env.DATABASE_URL),
    dataDir,
    redisUrl: nonEmpty(env.REDIS_URL),
    redisPrefix: env.REDIS_PREFIX ?? defaults.redisPrefix,
    redis: {
      clusterNodes: list(env.REDIS_CLUSTER_NODES),
      sentinels: list(env.REDIS_SENTINELS),
      sentinelName: nonEmpty(env.REDIS_SENTINEL_NAME),
      username: nonEmpty(env.REDIS_USERNAME),
      password: nonEmpty(env.REDIS_PASSWORD),
      tls: bool(env.REDIS_TLS) ?? false,
      tlsCaFile: nonEmpty(env.REDIS_TLS_CA_FILE) && path.resolve(projectRoot, env.REDIS_TLS_CA_FILE!),
      sentinelUsername: nonEmpty(env.REDIS_SENTINEL_USERNAME),
      sentinelPassword: nonEmpty(env.REDIS_SENTINEL_PASSWORD),
      sentinelTls: bool(env.REDIS_SENTINEL_TLS) ?? false,
    },
    logLevel: nonEmpty(env.LOG_LEVEL) ?? defaults.logLevel,
    cookieSecrets: nonEmpty(env.COOKIE_SECRETS)?.split(',').map((s) => s.trim()) ?? (dev ? [dev.cookie] : []),
    trustProxy: bool(env.TRUST_PROXY) ?? defaults.trustProxy,
    keysDir: path.resolve(projectRoot, nonEmpty(env.KEYS_DIR) ?? defaults.keysDir),
    bodyLimit: nonEmpty(env.BODY_LIMIT) ?? defaults.bodyLimit,
    tokens: {
      ...defaults.tokens,
      ...(nonEmpty(env.ACCESS_TOKEN_TTL) && { accessTokenTtl: env.ACCESS_TOKEN_TTL }),
      ...(nonEmpty(env.REFRESH_TOKEN_TTL) && { refreshTokenTtl: env.REFRESH_TOKEN_TTL }),
      ...(nonEmpty(env.AUTHORIZATION_CODE_TTL) && { authorizationCodeTtl: env.AUTHORIZATION_CODE_TTL }),
      ...(nonEmpty(env.CLIENT_CREDENTIALS_TTL) && { clientCredentialsTtl: env.CLIENT_CREDENTIALS_TTL }),
      ...(nonEmpty(env.SESSION_TTL) && { sessionTtl: env.SESSION_TTL }),
    },
    apiKeys: {
      prefix: nonEmpty(env.API_KEY_PREFIX) ?? defaults.apiKeys.prefix,
      pepper: nonEmpty(env.API_KEY_PEPPER) ?? dev?.pepper,
      defaultRollGraceSeconds: nonEmpty(env.API_KEY_ROLL_GRACE_SECONDS) ?? defaults.apiKeys.defaultRollGraceSeconds,
    },
    plans: defaults.plans,
    webhooks: {
      ...defaults.webhooks,
      retrySchedule: nonEmpty(env.WEBHOOK_RETRY_SCHEDULE)?.split(',').map((v) => (/^\s*\d+\s*$/.test(v) ? Number(v) : v)) ?? defaults.webhooks.retrySchedule,
      pollIntervalMs: nonEmpty(env.WEBHOOK_POLL_INTERVAL_MS) ?? defaults.webhooks.pollIntervalMs,
      scannerPublicKeys: jsonObject(env.SECRET_SCANNER_PUBLIC_KEYS) ?? {},
    },
    // WEBHOOK_ALLOW_PRIVATE_NETWORKS: the deprecated name, from when only webhooks went out.
    outbound: { allowPrivateNetworks: bool(env.OUTBOUND_ALLOW_PRIVATE_NETWORKS) ?? bool(env.WEBHOOK_ALLOW_PRIVATE_NETWORKS) ?? false },
    rateLimits: rateLimitsFrom(defaults.rateLimits, env),
    caches: { ...defaults.caches, ...(nonEmpty(env.CACHE_TTL_MS) && { ttlMs: env.CACHE_TTL_MS }), ...(nonEmpty(env.CACHE_MAX_ENTRIES) && { maxEntries: env.CACHE_MAX_ENTRIES }) },
    seedDevData: bool(env.SEED_DEV_DATA) ?? !production,
    workers: nonEmpty(env.WORKERS) ?? defaults.workers,
    http: defaults.http,
    accounts: defaults.accounts,
    database: {
      poolSize: nonEmpty(env.DATABASE_POOL_SIZE) ?? defaults.database.poolSize,
      connectTimeoutMs: nonEmpty(env.DATABASE_CONNECT_TIMEOUT_MS) ?? defaults.database.connectTimeoutMs,
      statementTimeoutMs: nonEmpty(env.DATABASE_STATEMENT_TIMEOUT_MS) ?? defaults.database.statementTimeoutMs,
      idleTimeoutMs: nonEmpty(env.DATABASE_IDLE_TIMEOUT_MS) ?? defaults.database.idleTimeoutMs,
      pgbouncer: bool(env.DATABASE_PGBOUNCER) ?? false,
    },
    shutdown: {
      // Balancers need the grace; a developer's Ctrl-C in development does not.
      delayMs: nonEmpty(env.SHUTDOWN_DELAY_MS) ?? (production ? defaults.shutdown.delayMs : 0),
      timeoutMs: nonEmpty(env.SHUTDOWN_TIMEOUT_MS) ?? defaults.shutdown.timeoutMs,
    },
    metrics: {
      // Production serves /metrics on its own port unless told otherwise (METRICS_PORT=off puts it on
      // the main port, where METRICS_TOKEN is then required).
      port: metricsPort(env.METRICS_PORT, production ? defaults.metrics.port : undefined),
      host: nonEmpty(env.METRICS_HOST) ?? defaults.metrics.host,
      token: nonEmpty(env.METRICS_TOKEN),
    },
    tracing: {
      otlpEndpoint: nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? tracesUrl(nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT)),
      serviceName: nonEmpty(env.OTEL_SERVICE_NAME) ?? 'flowgate',
      sampleRatio: nonEmpty(env.OTEL_TRACES_SAMPLER_ARG) ?? 1,
    },
    lastUsedFlushMs: nonEmpty(env.API_KEY_LAST_USED_FLUSH_MS) ?? defaults.apiKeys.lastUsedFlushMs,
  };

  const problems = productionProblems(env, production);

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path.join('.');
      const name = envNameOf(issue.path) ?? key;
      // A missing production secret is already explained above; skip the schema's echo of it.
      if (!problems.some((p) => p.startsWith(`  ${name}:`))) problems.push(`  ${name}: ${issue.message}`);
    }
  } else {
    problems.push(...redisProblems(parsed.data), ...clusterProblems(parsed.data), ...metricsProblems(parsed.data));
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  return parsed.data;
}

/**
 * config/default.json's rateLimits, with RATE_LIMITS (a JSON object merged one level deep, e.g.
 * '{"token":{"limit":5,"window":"1m"},"defaults":{"write":{"limit":10,"window":60}}}') and the
 * single switches on top. Validation (and the message naming the setting) is the schema's.
 */
function rateLimitsFrom(base: Record<string, any>, env: Env): Record<string, unknown> {
  const over = jsonObject(env.RATE_LIMITS);
  const out: Record<string, any> = { ...base };
  if (over && typeof over === 'object' && !Array.isArray(over)) {
    for (const [k, v] of Object.entries(over)) {
      out[k] = k === 'defaults' && v && typeof v === 'object' ? { ...base.defaults, ...v } : v;
    }
  } else if (over !== undefined) out.token = over; // not an object: the schema names it
  if (bool(env.RATE_LIMIT_ENABLED) !== undefined) out.enabled = bool(env.RATE_LIMIT_ENABLED);
  if (nonEmpty(env.RATE_LIMIT_FAIL_MODE)) out.failMode = env.RATE_LIMIT_FAIL_MODE;
  if (nonEmpty(env.RATE_LIMIT_TIMEOUT_MS)) out.timeoutMs = env.RATE_LIMIT_TIMEOUT_MS;
  return out;
}

/** METRICS_PORT: a port number, or `off`/empty for "on the main port". */
function metricsPort(v: string | undefined, fallback: number | undefined): string | number | undefined {
  if (v === undefined) return fallback;
  if (v === '' || /^(off|none|main)$/i.test(v)) return undefined;
  return v;
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; traces go to <base>/v1/traces (OTLP/HTTP). */
function tracesUrl(base: string | undefined): string | undefined {
  return base ? `${base.replace(/\/$/, '')}/v1/traces` : undefined;
}

/** Production never falls back to generated development secrets: they must be set explicitly. */
function productionProblems(env: Env, production: boolean): string[] {
  if (!production) return [];
  const out: string[] = [];
  if (!nonEmpty(env.COOKIE_SECRETS)) {
    out.push('  COOKIE_SECRETS: must be set when NODE_ENV=production (comma-separated secrets of at least 32 characters; the first signs, the rest still verify)');
  }
  if (!nonEmpty(env.API_KEY_PEPPER)) {
    out.push('  API_KEY_PEPPER: must be set when NODE_ENV=production (a random string of at least 16 characters; changing it invalidates every API key)');
  }
  return out;
}

/** The variable behind a schema path: the longest mapped prefix (`redis.sentinels.0` is REDIS_SENTINELS). */
function envNameOf(p: PropertyKey[]): string | undefined {
  for (let n = p.length; n > 0; n--) {
    const name = ENV_NAMES[p.slice(0, n).map(String).join('.')];
    if (name) return name;
  }
  return undefined;
}

/** Settings that are each valid but do not make one Redis together. */
function redisProblems(c: Config): string[] {
  const out: string[] = [];
  const r = c.redis;
  const chosen = [c.redisUrl && 'REDIS_URL', r.clusterNodes && 'REDIS_CLUSTER_NODES', r.sentinels && 'REDIS_SENTINELS'].filter(Boolean);
  if (chosen.length > 1) out.push(`  ${chosen[1]}: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES (got ${chosen.join(' and ')})`);
  if (r.sentinels && !r.sentinelName) out.push('  REDIS_SENTINEL_NAME: must name the master group when REDIS_SENTINELS is set (e.g. mymaster)');
  if (r.sentinelName && !r.sentinels) out.push('  REDIS_SENTINEL_NAME: only means something with REDIS_SENTINELS');
  const mode = redisMode(c);
  const u = c.redisUrl ? URL.parse(c.redisUrl) : null;
  if (c.redisUrl && !u) out.push('  REDIS_URL: is not a valid URL');
  if (u) {
    if (r.tls && u.protocol === 'redis:') out.push('  REDIS_TLS: a standalone Redis takes TLS from its URL: use rediss:// in REDIS_URL');
    if (r.password && u.password) out.push('  REDIS_PASSWORD: REDIS_URL carries a password already; set it in one place');
    if (r.username && u.username) out.push('  REDIS_USERNAME: REDIS_URL carries a user name already; set it in one place');
  }
  if (mode !== 'sentinel' && (r.sentinelUsername || r.sentinelPassword || r.sentinelTls)) {
    out.push('  REDIS_SENTINEL_PASSWORD: sentinel credentials and TLS only mean something with REDIS_SENTINELS');
  }
  if (!mode && (r.username || r.password || r.tls || r.tlsCaFile)) out.push('  REDIS_PASSWORD: Redis credentials and TLS settings need REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES');
  // A hash tag in the prefix would put every key in one slot: one node would hold all of them.
  if (mode === 'cluster' && /[{}]/.test(c.redisPrefix)) out.push('  REDIS_PREFIX: must not contain { or } on Redis Cluster (a hash tag in the prefix puts every key on one node)');
  return out;
}

/** Several processes share state only through PostgreSQL and Redis; PGlite and the in-process store are one process's. */
function clusterProblems(c: Config): string[] {
  if (c.workers <= 1) return [];
  const out: string[] = [];
  if (!c.databaseUrl) out.push(`  WORKERS: ${c.workers} workers need DATABASE_URL (embedded PGlite is single-process); set DATABASE_URL or WORKERS=1`);
  if (!redisMode(c)) out.push(`  WORKERS: ${c.workers} workers need REDIS_URL (the in-process store is not shared between processes); set REDIS_URL (or REDIS_SENTINELS, REDIS_CLUSTER_NODES) or WORKERS=1`);
  return out;
}

/** /metrics on the main listener is never public: it needs a token there. */
function metricsProblems(c: Config): string[] {
  if (c.metrics.port !== undefined || c.metrics.token || c.env !== 'production') return [];
  return ['  METRICS_PORT: with METRICS_PORT off, /metrics is served on the main port and needs METRICS_TOKEN (at least 16 characters) in production'];
}

