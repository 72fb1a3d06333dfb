import { decision, type Decision, type Limiter, type RateLimit } from './types.js';

/**
 * The sliding log in process memory: the embedded single-process mode's limiter, and the local
 * per-process estimate the Redis limiter falls back to while Redis is unreachable. Same semantics as
 * the Redis script (scripts.ts SLIDING_LOG): a request counts while now - t < window.
 */
export class MemoryLimiter implements Limiter {
  readonly kind = 'memory' as const;
  private readonly logs = new Map<string, { times: number[]; until: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly source: Decision['source'] = 'memory',
    private readonly clock: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async check(key: string, l: RateLimit, now = this.clock()): Promise<Decision> {
    return this.checkSync(key, l, now);
  }

  async peek(key: string, l: RateLimit, now = this.clock()): Promise<Decision> {
    return this.checkSync(key, l, now, false);
  }

  async refund(key: string, ticket: string): Promise<void> {
    this.refundSync(key, ticket);
  }

  refundSync(key: string, ticket: string): void {
    const t = this.logs.get(key)?.times;
    const at = Number(ticket.slice(ticket.indexOf(':') + 1));
    const i = t ? t.indexOf(at) : -1;
    if (i >= 0) t!.splice(i, 1);
  }

  checkSync(key: string, l: RateLimit, now = this.clock(), count = true): Decision {
    const windowMs = l.window * 1000;
    let entry = this.logs.get(key);
    if (!entry) {
      if (this.logs.size >= this.maxKeys) this.sweep(now);
      entry = { times: [], until: 0 };
      this.logs.set(key, entry);
    }
    const t = entry.times;
    // Times are kept sorted; drop those at or before now - window (binary search for the cut).
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid] <= now - windowMs) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) t.splice(0, lo);
    let allowed = false;
    let ticket: string | undefined;
    if (t.length < l.limit) {
      allowed = true;
      if (count) {
        let i = t.length;
        while (i > 0 && t[i - 1] > now) i--;
        t.splice(i, 0, now);
        ticket = `${this.source}:${now}`;
      }
    }
    entry.until = Math.max(entry.until, now + windowMs);
    const resetAt = t.length ? t[0] + windowMs : now + windowMs;
    return decision(allowed, t.length, resetAt, now, l, this.source, ticket);
  }

  async reset(key: string): Promise<void> {
    this.logs.delete(key);
  }

  clear(): void {
    this.logs.clear();
  }

  private sweep(now = this.clock()): void {
    for (const [k, e] of this.logs) if (e.until <= now) this.logs.delete(k);
    // Still full (an attack on many keys): forget the oldest half rather than grow without bound.
    if (this.logs.size >= this.maxKeys) {
      let n = this.logs.size >> 1;
      for (const k of this.logs.keys()) {
        if (n-- <= 0) break;
        this.logs.delete(k);
      }
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
