import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, type Config } from './schema.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

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
  seedDevData: 'SEED_DEV_DATA',
  workers: 'WORKERS',
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

/** The one place that reads `process.env` (or the env given) and `config/default.json`. */
export function loadConfig(env: Env = process.env): Config {
  const defaults = JSON.parse(readFileSync(path.join(projectRoot, 'config/default.json'), 'utf8'));
  const nodeEnv = nonEmpty(env.NODE_ENV) ?? 'development';
  const port = nonEmpty(env.PORT) ?? defaults.port;
  const issuer = nonEmpty(env.ISSUER)?.replace(/\/$/, '') ?? `http://localhost:${port}`;
  const dataDir = path.resolve(projectRoot, nonEmpty(env.DATA_DIR) ?? 'data');
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
    redisPrefix: env.REDIS_PREFIX ?? 'flowgate:',
    logLevel: nonEmpty(env.LOG_LEVEL) ?? defaults.logLevel,
    cookieSecrets: nonEmpty(env.COOKIE_SECRETS)?.split(',').map((s) => s.trim()) ?? (dev ? [dev.cookie] : []),
    trustProxy: bool(env.TRUST_PROXY) ?? false,
    keysDir: path.resolve(projectRoot, nonEmpty(env.KEYS_DIR) ?? 'keys'),
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
      retrySchedule: nonEmpty(env.WEBHOOK_RETRY_SCHEDULE)?.split(',').map((v) => (/^\s*\d+\s*$/.test(v) ? Number(v) : v)) ?? [5, 300, 1800, 7200, 18000, 36000, 36000],
      pollIntervalMs: nonEmpty(env.WEBHOOK_POLL_INTERVAL_MS) ?? 1000,
      scannerPublicKeys: jsonObject(env.SECRET_SCANNER_PUBLIC_KEYS) ?? {},
    },
    // WEBHOOK_ALLOW_PRIVATE_NETWORKS: the deprecated name, from when only webhooks went out.
    outbound: { allowPrivateNetworks: bool(env.OUTBOUND_ALLOW_PRIVATE_NETWORKS) ?? bool(env.WEBHOOK_ALLOW_PRIVATE_NETWORKS) ?? false },
    rateLimits: rateLimitsFrom(defaults.rateLimits, env),
    caches: { ...defaults.caches, ...(nonEmpty(env.CACHE_TTL_MS) && { ttlMs: env.CACHE_TTL_MS }) },
    seedDevData: bool(env.SEED_DEV_DATA) ?? !production,
    workers: nonEmpty(env.WORKERS) ?? 1,
  };

  const problems = productionProblems(env, production);

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path.join('.');
      const name = ENV_NAMES[key] ?? ENV_NAMES[String(issue.path[0])] ?? key;
      // A missing production secret is already explained above; skip the schema's echo of it.
      if (!problems.some((p) => p.startsWith(`  ${name}:`))) problems.push(`  ${name}: ${issue.message}`);
    }
  } else {
    problems.push(...clusterProblems(parsed.data));
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

/** Several processes share state only through PostgreSQL and Redis; PGlite and the in-process store are one process's. */
function clusterProblems(c: Config): string[] {
  if (c.workers <= 1) return [];
  const out: string[] = [];
  if (!c.databaseUrl) out.push(`  WORKERS: ${c.workers} workers need DATABASE_URL (embedded PGlite is single-process); set DATABASE_URL or WORKERS=1`);
  if (!c.redisUrl) out.push(`  WORKERS: ${c.workers} workers need REDIS_URL (the in-process store is not shared between processes); set REDIS_URL or WORKERS=1`);
  return out;
}

