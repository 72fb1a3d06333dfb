import { FlowgateError, flowgateErrors } from './errors.js';
import { basicAuthorization, failureOf, IntrospectionFailure, ProblemReporter, type RateLimitState, type SdkLogger } from './introspection-client.js';

/**
 * The X-RateLimit-* headers (Reset in Unix seconds) and draft-ietf-httpapi-ratelimit-headers-10's
 * `RateLimit-Policy: "write";q=100;w=60` and `RateLimit: "write";r=50;t=30`, the policy named after
 * the category. Flowgate's own API answers the same headers.
 */
export function rateLimitHeaders(l: RateLimitState): Record<string, string> {
  const policy = (l.policy ?? 'default').replace(/[^\w-]/g, '');
  const t = l.reset_after ?? Math.max(0, l.reset - Math.floor(Date.now() / 1000));
  const h: Record<string, string> = {
    'X-RateLimit-Limit': String(l.limit),
    'X-RateLimit-Remaining': String(l.remaining),
    'X-RateLimit-Reset': String(l.reset),
    RateLimit: `"${policy}";r=${l.remaining};t=${t}`,
  };
  if (l.window) h['RateLimit-Policy'] = `"${policy}";q=${l.limit};w=${l.window}`;
  return h;
}

function per(window: number | undefined): string {
  const named: Record<number, string> = { 1: 'second', 60: 'minute', 3600: 'hour', 86400: 'day' };
  return window === undefined ? 'per window' : named[window] ? `per ${named[window]}` : `per ${window} seconds`;
}

/** "Rate limit exceeded. Limit: 100 requests per minute." */
export function rateLimitMessage(limit: number, windowSeconds: number | undefined): string {
  return `Rate limit exceeded. Limit: ${limit} requests ${per(windowSeconds)}.`;
}

/** 429 RATE_LIMITED with Retry-After (RFC 9110 §10.2.3) and the rate-limit headers. */
export function rateLimitedError(l: RateLimitState): FlowgateError {
  const retryAfter = Math.max(1, l.retry_after ?? l.reset_after ?? 1);
  return flowgateErrors.rateLimited(rateLimitMessage(l.limit, l.window), retryAfter, rateLimitHeaders(l));
}

export interface RateLimitCheckOptions {
  issuer: string;
  /** The resource server's client (introspection permission). */
  clientId: string;
  clientSecret: string;
  /** Default `webhook` (per client IP). */
  category?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  logger?: SdkLogger;
}

export type RateLimitOutcome = { ok: true; headers: Record<string, string> } | { ok: false; error: FlowgateError };

/**
 * Rate limits for requests that carry no Flowgate credential (inbound webhooks): asks Flowgate's
 * `POST /ratelimit/check`, so the limit holds across every instance of the service.
 */
export class RateLimitChecker {
  private readonly endpoint: string;
  private readonly authorization: string;
  private readonly doFetch: typeof fetch;
  private readonly reporter: ProblemReporter;

  constructor(private readonly o: RateLimitCheckOptions) {
    this.endpoint = `${o.issuer.replace(/\/$/, '')}/ratelimit/check`;
    this.authorization = basicAuthorization(o.clientId, o.clientSecret);
    this.doFetch = o.fetch ?? fetch;
    this.reporter = new ProblemReporter(o.logger ?? console);
  }

  /** `key`: whose budget the request spends, usually the client IP. */
  async check(key: string): Promise<RateLimitOutcome> {
    let state: RateLimitState | null;
    try {
      let res: Response;
      try {
        res = await this.doFetch(this.endpoint, {
          method: 'POST',
          headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams({ category: this.o.category ?? 'webhook', key }).toString(),
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
        });
      } catch (err) {
        throw new IntrospectionFailure('unavailable', (err as Error).message);
      }
      if (!res.ok) throw await failureOf(res, { endpoint: this.endpoint, clientId: this.o.clientId, reporter: this.reporter });
      state = ((await res.json()) as { ratelimit: RateLimitState | null }).ratelimit;
      this.reporter.resolved();
    } catch (err) {
      const misconfigured = err instanceof IntrospectionFailure && err.kind === 'misconfigured';
      return { ok: false, error: misconfigured ? flowgateErrors.misconfigured() : flowgateErrors.unavailable() };
    }
    if (!state) return { ok: true, headers: {} };
    if (state.limited) return { ok: false, error: rateLimitedError(state) };
    return { ok: true, headers: rateLimitHeaders(state) };
  }
}
