import { z } from 'zod';

const positiveInt = z.coerce.number().int().positive();

const planSchema = z.object({
  // null = unlimited
  maxApiKeys: z.number().int().nonnegative().nullable(),
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
  }),
  apiKeys: z.object({
    prefix: z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,9}[-_]$/, 'must be 1-10 letters/digits ending in "-" or "_", e.g. sk- or wfk_'),
    pepper: z.string().min(16, 'needs at least 16 characters'),
    defaultRollGraceSeconds: z.coerce.number().int().nonnegative(),
  }),
  plans: z.record(z.string(), planSchema),
  /** Webhook delivery (issue 8). */
  webhooks: z.object({
    /** Delays in seconds before each retry; attempts = length + 1. */
    retrySchedule: z.array(z.number().int().nonnegative()).min(1, 'needs at least one delay'),
    /** Development and tests only: lifts the SSRF guard (private addresses, plain http). */
    allowPrivateNetworks: z.boolean(),
    pollIntervalMs: positiveInt,
    /** Secret-scanner public keys (PEM, ECDSA P-256) by key identifier, for leaked-key reports. */
    scannerPublicKeys: z.record(z.string(), z.string()),
  }),
  seedDevData: z.boolean(),
  /** Processes serving the port (node:cluster); >1 needs PostgreSQL and Redis (shared state). */
  workers: z.coerce.number().int().min(1, 'must be at least 1').max(64, 'must be at most 64'),
});

export type Config = z.infer<typeof configSchema>;
export type PlanConfig = z.infer<typeof planSchema>;
