/** A limit: at most `limit` requests in any `window` seconds (a sliding window, not a fixed bucket). */
export interface RateLimit {
  limit: number;
  /** Seconds. */
  window: number;
}

/** What one check answers; times are epoch milliseconds. */
export interface Decision {
  allowed: boolean;
  limit: number;
  /** Requests still allowed in the window after this one. */
  remaining: number;
  window: number;
  /** When the oldest counted request leaves the window (one more request becomes possible). */
  resetAt: number;
  /** The clock the decision was made with (Redis's, or the process's in degraded mode). */
  now: number;
  /** Seconds to wait before retrying (0 when allowed). RFC 9110 §10.2.3 Retry-After. */
  retryAfter: number;
  /** Which store decided: 'redis', 'memory', 'local' (Redis unreachable: per-process estimate) or 'closed'. */
  source: 'redis' | 'memory' | 'local' | 'closed';
  /** Names the request this check counted (absent when it counted nothing), for `refund`. */
  ticket?: string;
}

/** One atomic check-and-count per call. Implementations: Redis (shared), memory (one process). */
export interface Limiter {
  readonly kind: 'redis' | 'memory';
  /** Counts one request against `key` if it fits. `now` (ms) is for controlled clocks in tests. */
  check(key: string, limit: RateLimit, now?: number): Promise<Decision>;
  /** The decision a request would get now, counting nothing. */
  peek(key: string, limit: RateLimit, now?: number): Promise<Decision>;
  /** Takes back the request a check counted (its `ticket`): an attempt that turned out not to count. */
  refund(key: string, ticket: string): Promise<void>;
  /** Forgets a key (tests, and unlocking an account after a successful login). */
  reset(key: string): Promise<void>;
}

/**
 * A limit the store cannot evaluate (a command error for this one key or policy, as opposed to the
 * store being unreachable): this request fails; the limiter stays up for everyone else.
 */
export class LimitCheckError extends Error {}

export function decision(
  allowed: boolean,
  count: number,
  resetAt: number,
  now: number,
  l: RateLimit,
  source: Decision['source'],
  ticket?: string,
): Decision {
  return {
    ...(ticket !== undefined && { ticket }),
    allowed,
    limit: l.limit,
    remaining: Math.max(0, l.limit - count),
    window: l.window,
    resetAt,
    now,
    retryAfter: allowed ? 0 : Math.max(1, Math.ceil((resetAt - now) / 1000)),
    source,
  };
}
