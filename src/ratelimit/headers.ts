import type { Decision } from './types.js';

/** "per minute", "per hour", "per 30 seconds": the seeds' 429 message. */
export function perWindow(seconds: number): string {
  const named: Record<number, string> = { 1: 'second', 60: 'minute', 3600: 'hour', 86400: 'day' };
  return named[seconds] ? `per ${named[seconds]}` : `per ${seconds} seconds`;
}

export function limitedMessage(d: Pick<Decision, 'limit' | 'window'>): string {
  return `Rate limit exceeded. Limit: ${d.limit} requests ${perWindow(d.window)}.`;
}

/**
 * Seed 002's X-RateLimit-* (Reset in Unix seconds) and draft-ietf-httpapi-ratelimit-headers-10's
 * RateLimit-Policy (q quota, w window seconds) and RateLimit (r remaining, t seconds until the quota
 * grows again), the policy named after the category; Retry-After (RFC 9110 §10.2.3) when refused.
 */
export function rateLimitHeaders(d: Decision, policy: string): Record<string, string> {
  const t = Math.max(0, Math.ceil((d.resetAt - d.now) / 1000));
  const h: Record<string, string> = {
    'X-RateLimit-Limit': String(d.limit),
    'X-RateLimit-Remaining': String(d.remaining),
    'X-RateLimit-Reset': String(Math.ceil(d.resetAt / 1000)),
    'RateLimit-Policy': `"${policy}";q=${d.limit};w=${d.window}`,
    RateLimit: `"${policy}";r=${d.remaining};t=${t}`,
  };
  if (!d.allowed) h['Retry-After'] = String(d.retryAfter);
  return h;
}
