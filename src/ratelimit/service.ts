import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Config } from '../config/schema.js';
import type { KeyValueStore } from '../storage/kv.js';
import { RedisKeyValueStore } from '../storage/redis-kv.js';
import { ALGORITHM } from './algorithm.js';
import { MemoryLimiter } from './memory-limiter.js';
import { MetricsRegistry } from './metrics.js';
import { RateLimitPolicies } from './policies.js';
import { RedisLimiter, type StoreState } from './redis-limiter.js';
import type { Decision, Limiter, RateLimit } from './types.js';

/** Whose budget a request spends: the credential, as introspection or principal resolution saw it. */
export interface Subject {
  credentialType?: string;
  orgId?: string | null;
  keyId?: string | null;
  clientId?: string | null;
  sub?: string | null;
}

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
  readonly metrics = new MetricsRegistry();
  /** Tests replace the clock (ms); production uses Redis's own clock (one clock for all instances). */
  clock: (() => number) | undefined;
  private readonly checks = this.metrics.counter('flowgate_ratelimit_checks_total', 'Rate-limit checks by policy and result');
  private readonly degradedChecks = this.metrics.counter('flowgate_ratelimit_degraded_checks_total', 'Checks decided without Redis (local estimate or fail-closed)');

  constructor(
    readonly config: Config,
    ds: DataSource,
    kv: KeyValueStore,
    logger: Logger,
  ) {
    this.policies = new RateLimitPolicies(ds, config, logger, kv);
    const rl = config.rateLimits;
    this.limiter =
      kv instanceof RedisKeyValueStore
        ? new RedisLimiter(kv.client, { failMode: rl.failMode, timeoutMs: rl.timeoutMs, algorithm: ALGORITHM, logger })
        : new MemoryLimiter('memory');
    const up = this.metrics.gauge('flowgate_ratelimit_store_up', '1 when the shared rate-limit store answers, 0 while degraded');
    const outages = this.metrics.gauge('flowgate_ratelimit_store_outages', 'Rate-limit store outages since start');
    this.metrics.onCollect(() => {
      const s = this.state();
      up.set(s.state === 'up' ? 1 : 0, { store: s.store });
      outages.set('outages' in s ? s.outages : 0, { store: s.store });
    });
  }

  get enabled(): boolean {
    return this.config.rateLimits.enabled;
  }

  /** For /readyz details and metrics. A degraded limiter does not make the instance unready. */
  state(): StoreState | { store: 'memory'; state: 'up' } {
    return this.limiter instanceof RedisLimiter ? this.limiter.state() : { store: 'memory', state: 'up' };
  }

  /** One request of `category` by a credential; null when no limit applies to that category. */
  async checkCredential(s: Subject, category: string, opts: { ip?: string } = {}): Promise<Checked | null> {
    if (!this.enabled) return null;
    const resolved = await this.policies.resolve(category, s.orgId, s.credentialType === 'api_key' ? s.keyId : null);
    if (!resolved) return null;
    // Webhook ingestion is limited per client IP (seed 002); everything else per credential.
    const who = category === 'webhook' && opts.ip ? `ip:${opts.ip}` : subjectKey(s);
    return this.check(`rl:${resolved.bucket}:${who}`, resolved.limit, category);
  }

  /** A fixed policy of Flowgate's own endpoints (token, management, login) for one subject. */
  async checkFixed(policy: 'token' | 'management' | 'loginIp' | 'loginAccount' | 'authFailures', subject: string): Promise<Checked | null> {
    if (!this.enabled) return null;
    return this.check(`rl:${policy}:${subject}`, this.config.rateLimits[policy], policy);
  }

  async forget(policy: string, subject: string): Promise<void> {
    await this.limiter.reset(`rl:${policy}:${subject}`);
  }

  close(): void {
    (this.limiter as { close?: () => void }).close?.();
  }

  private async check(key: string, limit: RateLimit, policy: string): Promise<Checked> {
    const d = await this.limiter.check(key, limit, this.clock?.());
    this.checks.inc({ policy, result: d.allowed ? 'allowed' : 'limited' });
    if (d.source === 'local' || d.source === 'closed') this.degradedChecks.inc({ mode: d.source });
    return { ...d, policy };
  }
}

/** API keys by key id; user tokens by organization and user; client tokens and service JWTs by client. */
export function subjectKey(s: Subject): string {
  if (s.credentialType === 'api_key' && s.keyId) return `k:${s.keyId}`;
  if (s.sub && s.sub !== s.clientId) return `u:${s.orgId ?? '-'}:${s.sub}`;
  return `c:${s.clientId ?? s.sub ?? 'anonymous'}`;
}
