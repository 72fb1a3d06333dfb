import { rateLimitHeaders as headersOf, rateLimitMessage } from '@flowgate/sdk';
import type { Decision } from './types.js';

// The headers and the 429 message are defined once, in @flowgate/sdk, so Flowgate's API and the
// workflow services built on the SDK answer alike.

export function limitedMessage(d: Pick<Decision, 'limit' | 'window'>): string {
  return rateLimitMessage(d.limit, d.window);
}

/**
 * X-RateLimit-* (Reset in Unix seconds) and draft-ietf-httpapi-ratelimit-headers-10's
 * RateLimit-Policy (q quota, w window seconds) and RateLimit (r remaining, t seconds until the quota
 * grows again), the policy named after the category; Retry-After (RFC 9110 §10.2.3) when refused.
 */
export function rateLimitHeaders(d: Decision, policy: string): Record<string, string> {
  const h = headersOf({
    limit: d.limit,
    remaining: d.remaining,
    reset: Math.ceil(d.resetAt / 1000),
    window: d.window,
    policy,
    reset_after: Math.max(0, Math.ceil((d.resetAt - d.now) / 1000)),
  });
  if (!d.allowed) h['Retry-After'] = String(d.retryAfter);
  return h;
}
