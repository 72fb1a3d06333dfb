import type { Context, Next } from 'koa';
import { sdkErrors, sendSdkError } from './errors.js';
import { rateLimitHeaders, rateLimited, type RateLimitState } from './middleware.js';

export interface IpRateLimitOptions {
  issuer: string;
  /** The resource server's client (introspection permission), as for flowgateAuth. */
  clientId: string;
  clientSecret: string;
  /** Default `webhook` (seed 002: 10000 per minute per client IP). */
  category?: string;
  /** Whose budget a request spends; default the client IP (`ctx.ip`: set `app.proxy` behind a proxy). */
  key?: (ctx: Context) => string;
  fetch?: typeof fetch;
}

/**
 * Rate limits for requests that carry no Flowgate credential (inbound webhooks): asks Flowgate's
 * `/ratelimit/check`, so the limit holds across every instance of the service. Sets the same headers
 * as flowgateAuth and answers 429 RATE_LIMITED when spent.
 */
export function ipRateLimit(o: IpRateLimitOptions) {
  const endpoint = `${o.issuer.replace(/\/$/, '')}/ratelimit/check`;
  const authorization = `Basic ${Buffer.from(`${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret)}`).toString('base64')}`;
  const doFetch = o.fetch ?? fetch;
  return async (ctx: Context, next: Next) => {
    let state: RateLimitState | null;
    try {
      const res = await doFetch(endpoint, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ category: o.category ?? 'webhook', key: o.key ? o.key(ctx) : ctx.ip }).toString(),
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      state = ((await res.json()) as { ratelimit: RateLimitState | null }).ratelimit;
    } catch {
      return sendSdkError(ctx, sdkErrors.unavailable());
    }
    if (state) {
      ctx.set(rateLimitHeaders(state));
      if (state.limited) return sendSdkError(ctx, rateLimited(state));
    }
    await next();
  };
}
