import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Config } from '../config/schema.js';
import type { KeyValueStore } from '../storage/kv.js';
import { RedisKeyValueStore } from '../storage/redis-kv.js';
import { ALGORITHM } from './algorithm.js';
import { MemoryLimiter } from './memory-limiter.js';
import { recordRateLimitDecision } from '../metrics/registry.js';
import { RateLimitPolicies, type KnownLimits, type PolicyCaches } from './policies.js';
import { RedisLimiter, type StoreState } from './redis-limiter.js';
import { LimitCheckError, type Decision, type Limiter, type RateLimit } from './types.js';
import type { Cache } from '../storage/cache.js';
import { tags } from '../storage/invalidation.js';

/** A budget found spent: the decision, and when (this process's clock) it was made. */
export interface Spent {
  d: Checked;
  at: number;
}

/** Whose budget a request spends: the credential, as introspection or principal resolution saw it. */
export interface Subject {
  credentialType?: string;
  orgId?: string | null;
  keyId?: string | null;
  clientId?: string | null;
  sub?: string | null;
  /** The plan and overrides read with the credential, when its resolution has them. */
  limits?: KnownLimits;
}

/** Flowgate's own endpoints' fixed policies (config `rateLimits.<name>`). */
export type FixedPolicy = 'token' | 'tokenFailuresIp' | 'tokenFailuresClient' | 'management' | 'loginIp' | 'loginAccount' | 'authFailures';

/** A decision with the policy (category or endpoint) it was made under. */
export interface Checked extends Decision {
  policy: string;
}

/**
 * Rate limiting for every caller and category: policies (plan, organization, key) and one shared
 * limiter (Redis, or in-process in the embedded single-process mode). Services never import Koa;
 * the HTTP pieces (introspection decorator, token endpoint, management API, login guard) call this.
 */
export class RateLimitService {
  readonly limiter: Limiter;
  readonly policies: RateLimitPolicies;
  /** Tests replace the clock (ms); production uses Redis's own clock (one clock for all instances). */
  clock: (() => number) | undefined;

  constructor(
    readonly config: Config,
    ds: DataSource,
    kv: KeyValueStore,
    private readonly logger: Logger,
    policyCaches: PolicyCaches,
    /**
     * Budgets found spent, until the oldest counted request leaves the window. The sliding log never
     * logs a refused request, so until then every check, on every instance, is refused: answering
     * those here is exact and costs Redis nothing. Tagged with the key and organization whose
     * overrides set the limit, so raising a limit ends it on every instance at once.
     */
    private readonly spent?: Cache<Spent>,
  ) {
    this.policies = new RateLimitPolicies(ds, config, logger, policyCaches);
    const rl = config.rateLimits;
    this.limiter =
      kv instanceof RedisKeyValueStore
        ? new RedisLimiter(kv.client, { failMode: rl.failMode, timeoutMs: rl.timeoutMs, algorithm: ALGORITHM, logger })
        : new MemoryLimiter('memory');
  }

  get enabled(): boolean {
    return this.config.rateLimits.enabled;
  }

  /** For /readyz details and metrics. A degraded limiter does not make the instance unready. */
  state(): StoreState | { store: 'memory'; state: 'up' } {
    return this.limiter instanceof RedisLimiter ? this.limiter.state() : { store: 'memory', state: 'up' };
  }

  /**
   * One request of `category` by a credential; null when no limit applies to that category.
   * `resourceServer`: the client asking on the credential's behalf (introspection, /ratelimit/check).
   */
  async checkCredential(s: Subject, category: string, opts: { ip?: string; resourceServer?: string } = {}): Promise<Checked | null> {
    if (!this.enabled) return null;
    const resolved = await this.policies.resolve(category, s.orgId, s.credentialType === 'api_key' ? s.keyId : null, s.limits);
    if (!resolved) return null;
    // Webhook ingestion is limited per client IP (the documented webhook policy), within one organization and one resource
    // server: an address's budget at one tenant is not another tenant's to spend. Everything else per
    // credential.
    const who = category === 'webhook' && opts.ip ? `ip:o:${s.orgId ?? '-'}:rs:${opts.resourceServer ?? '-'}:${opts.ip}` : subjectKey(s);
    const key = `rl:${resolved.bucket}:${who}`;
    const known = this.stillSpent(key, resolved.limit);
    if (known) return known;
    const version = this.spent?.version ?? 0;
    const d = await this.check(key, resolved.limit, category);
    // Only a shared (or single-process) count is exact; a degraded per-process estimate is not kept.
    if (!d.allowed && (d.source === 'redis' || d.source === 'memory') && d.resetAt > d.now) {
      const t = [...(s.keyId ? [tags.key(s.keyId)] : []), ...(s.orgId ? [tags.org(s.orgId)] : [])];
      this.spent?.set(key, { d, at: Date.now() }, version, { ttlMs: d.resetAt - d.now, tags: t });
    }
    return d;
  }

  /** The refusal a spent budget still gets, with its clock moved on; undefined once it may admit again. */
  private stillSpent(key: string, limit: RateLimit): Checked | undefined {
    const e = this.spent?.get(key);
    if (!e || e.d.limit !== limit.limit || e.d.window !== limit.window) return undefined;
    const now = this.clock ? this.clock() : e.d.now + (Date.now() - e.at);
    if (now >= e.d.resetAt) {
      this.spent!.delete(key);
      return undefined;
    }
    recordRateLimitDecision(e.d.policy, false, e.d.source);
    return { ...e.d, now, retryAfter: Math.max(1, Math.ceil((e.d.resetAt - now) / 1000)) };
  }

  /** A fixed policy of Flowgate's own endpoints (token, management, login) for one subject: counts one. */
  async checkFixed(policy: FixedPolicy, subject: string): Promise<Checked | null> {
    if (!this.enabled) return null;
    return this.check(`rl:${policy}:${subject}`, this.config.rateLimits[policy], policy);
  }

  /** What `checkFixed` would answer now, counting nothing. */
  async peekFixed(policy: FixedPolicy, subject: string): Promise<Checked | null> {
    if (!this.enabled) return null;
    return this.check(`rl:${policy}:${subject}`, this.config.rateLimits[policy], policy, 'peek');
  }

  /** Takes back a request `checkFixed` counted (an attempt that turned out to be a success). */
  async refundFixed(policy: FixedPolicy, subject: string, d: Checked | null): Promise<void> {
    if (d?.ticket) await this.limiter.refund(`rl:${policy}:${subject}`, d.ticket);
  }

  async forget(policy: string, subject: string): Promise<void> {
    await this.limiter.reset(`rl:${policy}:${subject}`);
  }

  close(): void {
    (this.limiter as { close?: () => void }).close?.();
  }

  private async check(key: string, limit: RateLimit, policy: string, mode: 'count' | 'peek' = 'count'): Promise<Checked> {
    let d: Decision;
    try {
      d = mode === 'peek' ? await this.limiter.peek(key, limit, this.clock?.()) : await this.limiter.check(key, limit, this.clock?.());
    } catch (err) {
      // One policy the store cannot evaluate fails its own request, loudly, and nobody else's.
      if (err instanceof LimitCheckError) this.logger.error({ policy, problem: err.message }, 'rate-limit check failed for one policy');
      throw err;
    }
    recordRateLimitDecision(policy, d.allowed, d.source);
    return { ...d, policy };
  }
}

/** API keys by key id; user tokens by organization and user; client tokens and service JWTs by client. */
export function subjectKey(s: Subject): string {
  if (s.credentialType === 'api_key' && s.keyId) return `k:${s.keyId}`;
  if (s.sub && s.sub !== s.clientId) return `u:${s.orgId ?? '-'}:${s.sub}`;
  return `c:${s.clientId ?? s.sub ?? 'anonymous'}`;
}
