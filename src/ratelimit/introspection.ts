import type { ResolvedCredential } from '../credentials/types.js';
import { categoryFor } from './categories.js';
import type { Checked, RateLimitService } from './service.js';

/**
 * Introspection's rate-limit state (Unkey's verify pattern: validity and limit state in one answer,
 * so the workflow service pays one round trip). Applies only when the caller asks, with
 * `ratelimit_category`, or `ratelimit_method` + `ratelimit_route` (Flowgate maps them, see
 * categories.ts); `ratelimit_ip` is the end client's address for the per-IP `webhook` category.
 * A limited credential stays `active: true` with `ratelimit.limited: true`: it is valid, just spent.
 * A token exchanged from an API key spends the key's budget, under the key's own limits.
 */
export function rateLimitDecorator(limits: RateLimitService) {
  return async (r: ResolvedCredential, params: URLSearchParams, caller?: { clientId: string }): Promise<Record<string, unknown> | undefined> => {
    const method = params.get('ratelimit_method');
    const category = params.get('ratelimit_category') ?? (method ? categoryFor(method, params.get('ratelimit_route') ?? '/') : null);
    if (!category) return undefined;
    const keyLike = r.kind === 'api_key' || r.kind === 'exchanged_token';
    const d = await limits.checkCredential(
      {
        credentialType: keyLike ? 'api_key' : r.kind,
        orgId: r.orgId,
        keyId: r.keyId,
        clientId: r.clientId,
        sub: r.userId ?? r.subject,
        limits: keyLike && r.plan !== null ? { plan: r.plan, keyLimits: r.keyLimits, orgLimits: r.orgLimits } : undefined,
      },
      category.slice(0, 32),
      { ip: params.get('ratelimit_ip') ?? undefined, resourceServer: caller?.clientId },
    );
    return d ? rateLimitView(d) : undefined;
  };
}

/** The `ratelimit` object of an answer (introspection and the check endpoint). */
export function rateLimitView(d: Checked) {
  return {
    policy: d.policy,
    limit: d.limit,
    remaining: d.remaining,
    reset: Math.ceil(d.resetAt / 1000),
    window: d.window,
    // Seconds until the quota grows again (RateLimit's t), from the limiter's clock, not the caller's.
    reset_after: Math.max(0, Math.ceil((d.resetAt - d.now) / 1000)),
    ...(!d.allowed && { limited: true, retry_after: d.retryAfter }),
  };
}
