import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { MemoryLimiter } from './memory-limiter.js';
import { SLIDING_COUNTER, SLIDING_LOG } from './scripts.js';
import { ReplyError } from 'ioredis';
import { decision, LimitCheckError, type Decision, type Limiter, type RateLimit } from './types.js';
import type { Algorithm } from './algorithm.js';

export type FailMode = 'open' | 'closed';

export interface StoreState {
  store: 'redis';
  state: 'up' | 'degraded';
  failMode: FailMode;
  /** Epoch ms of the state change. */
  since: number;
  outages: number;
  failedChecks: number;
  /**
   * Why the last check failed: `unreachable` (no answer in time: an outage) or `refused` (Redis
   * answered with an error, e.g. an ACL without EVALSHA, MOVED from a Cluster reached as a single
   * node: a configuration problem that no waiting cures, logged as an error every minute it lasts).
   */
  reason?: 'unreachable' | 'refused';
  lastError?: string;
}

export interface RedisLimiterOptions {
  failMode?: FailMode;
  /** A check that takes longer counts as a failure (Redis hung, not closed). Default 250 ms. */
  timeoutMs?: number;
  /** After a failure, Redis is not asked again for this long (no request waits on a dead Redis). */
  retryAfterFailureMs?: number;
  algorithm?: Algorithm;
  logger?: Logger;
  onStateChange?: (s: StoreState) => void;
}

type Reply = [number, number, number, number];

/**
 * The shared limiter: one atomic script per check on the configured Redis (its key prefix applies).
 *
 * Redis unreachable: `failMode: 'open'` (default) serves requests and keeps counting in a local
 * per-process sliding log with the same limits, so a client still meets a limit, per process (N
 * instances admit up to N x limit during the outage). `failMode: 'closed'` refuses. One warning is
 * logged per outage and one line when Redis is back; the state is in `state()` (readyz, metrics).
 * When Redis answers again the shared counts take over; the local estimate is dropped.
 */
export class RedisLimiter implements Limiter {
  readonly kind = 'redis' as const;
  private readonly local: MemoryLimiter;
  private readonly nonce = randomBytes(6).toString('base64url');
  private seq = 0;
  private down = false;
  private skipUntil = 0;
  private readonly s: StoreState;
  private readonly command: string;
  private lastRefusalLog = 0;

  constructor(
    /** A standalone or Sentinel connection, or ioredis' Cluster client: the script touches one key, so one slot. */
    private readonly client: Redis | Cluster,
    private readonly o: RedisLimiterOptions = {},
  ) {
    const algorithm = o.algorithm ?? 'sliding_log';
    this.command = algorithm === 'sliding_log' ? 'fgRateSlidingLog' : 'fgRateSlidingCounter';
    // defineCommand: EVALSHA, falling back to EVAL on NOSCRIPT (e.g. after Redis restarted empty).
    if (!(this.command in client)) {
      client.defineCommand(this.command, { numberOfKeys: 1, lua: algorithm === 'sliding_log' ? SLIDING_LOG : SLIDING_COUNTER });
    }
    this.local = new MemoryLimiter('local');
    this.s = { store: 'redis', state: 'up', failMode: o.failMode ?? 'open', since: Date.now(), outages: 0, failedChecks: 0 };
  }

  state(): StoreState {
    return { ...this.s };
  }

  async check(key: string, l: RateLimit, now?: number): Promise<Decision> {
    return this.decide(key, l, now, true);
  }

  async peek(key: string, l: RateLimit, now?: number): Promise<Decision> {
    return this.decide(key, l, now, false);
  }

  async refund(key: string, ticket: string): Promise<void> {
    if (ticket.startsWith('local:')) return this.local.refundSync(key, ticket);
    if (this.client.status === 'ready') await this.client.zrem(key, ticket).catch(() => {});
  }

  private async decide(key: string, l: RateLimit, now: number | undefined, count: boolean): Promise<Decision> {
    // Checked before Redis is asked: a limit no script can evaluate is this request's problem only.
    if (!Number.isSafeInteger(l.limit) || l.limit < 0 || !Number.isSafeInteger(l.window * 1000) || l.window <= 0) {
      throw new LimitCheckError(`rate limit ${JSON.stringify(l).slice(0, 80)} cannot be evaluated`);
    }
    if (this.down && Date.now() < this.skipUntil) return this.degraded(key, l, now, count);
    // Connecting (startup): the command waits in ioredis's queue, bounded by the timeout. Lost: do not wait.
    const st = this.client.status;
    if (st === 'reconnecting' || st === 'close' || st === 'end') return this.fail(key, l, now, new Error(`redis ${st}`), count);
    let r: Reply & { member?: string };
    try {
      r = await this.run(key, l, now ?? -1, count);
    } catch (err) {
      // Redis answered with an error about this command (ERR ..., WRONGTYPE ...): it is reachable and
      // every other key still works, so only this request fails. Anything else (timeouts, a lost
      // connection, LOADING, BUSY, READONLY, OOM ...) is the store failing: outage mode for all.
      if (err instanceof ReplyError && /^(ERR|WRONGTYPE)\b/.test((err as Error).message)) {
        throw new LimitCheckError(`rate-limit script failed for this request: ${(err as Error).message.slice(0, 200)}`);
      }
      return this.fail(key, l, now, err, count);
    }
    if (this.down) this.recovered();
    const admitted = r[0] === 1 && count;
    return decision(r[0] === 1, r[1], r[2], r[3], l, 'redis', admitted ? `${r[3]}:${r.member}` : undefined);
  }

  async reset(key: string): Promise<void> {
    await this.local.reset(key);
    if (this.client.status === 'ready') await this.client.del(key).catch(() => {});
  }

  close(): void {
    this.local.close();
  }

  private run(key: string, l: RateLimit, now: number, count: boolean): Promise<Reply & { member?: string }> {
    const member = `${this.nonce}${(this.seq = (this.seq + 1) % 1e9)}`;
    const call = (this.client as unknown as Record<string, (...a: unknown[]) => Promise<Reply>>)[this.command](
      key,
      l.limit,
      l.window * 1000,
      now,
      member,
      ...(count ? [] : ['peek']),
    ).then((r) => Object.assign(r, { member }));
    const ms = this.o.timeoutMs ?? 250;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`rate-limit check timed out after ${ms} ms`)), ms);
    });
    call.catch(() => {}); // a late rejection after the timeout must not go unhandled
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  }

  private fail(key: string, l: RateLimit, now: number | undefined, err: unknown, count = true): Decision {
    this.s.failedChecks++;
    this.skipUntil = Date.now() + (this.o.retryAfterFailureMs ?? 1000);
    const message = err instanceof Error ? err.message : String(err);
    const refused = (err as { name?: string } | undefined)?.name === 'ReplyError';
    this.s.reason = refused ? 'refused' : 'unreachable';
    this.s.lastError = message;
    if (refused && Date.now() - this.lastRefusalLog >= 60_000) {
      // Not an outage: Redis is there and says no. Say so loudly, whatever the fail mode.
      this.lastRefusalLog = Date.now();
      this.o.logger?.error(
        { err: message, failMode: this.s.failMode },
        this.s.failMode === 'open'
          ? 'rate limiter: Redis refused the check (configuration error); limits are NOT shared, serving with a per-process estimate'
          : 'rate limiter: Redis refused the check (configuration error); refusing rate-limited requests',
      );
    }
    if (!this.down) {
      this.down = true;
      this.s.state = 'degraded';
      this.s.since = Date.now();
      this.s.outages++;
      if (!refused) this.o.logger?.warn(
        { err: message, failMode: this.s.failMode },
        this.s.failMode === 'open'
          ? 'rate limiter: Redis unreachable, failing open with a per-process estimate'
          : 'rate limiter: Redis unreachable, failing closed (refusing rate-limited requests)',
      );
      this.o.onStateChange?.(this.state());
    }
    return this.degraded(key, l, now, count);
  }

  private recovered(): void {
    this.down = false;
    this.s.state = 'up';
    delete this.s.reason;
    delete this.s.lastError;
    const downMs = Date.now() - this.s.since;
    this.s.since = Date.now();
    this.local.clear();
    this.o.logger?.info({ downMs, failedChecks: this.s.failedChecks }, 'rate limiter: Redis reachable again, shared limits resumed');
    this.o.onStateChange?.(this.state());
  }

  private degraded(key: string, l: RateLimit, now?: number, count = true): Decision {
    const t = now ?? Date.now();
    if (this.s.failMode === 'closed') return decision(false, l.limit, t + 1000, t, l, 'closed');
    return this.local.checkSync(key, l, t, count);
  }
}
