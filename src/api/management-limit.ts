import type { Context, Next } from 'koa';
import { AppError } from '../http/errors.js';
import type { ResolvedHook } from '../auth/service.js';
import type { Principal } from '../auth/principal.js';
import { limitedMessage, rateLimitHeaders } from '../ratelimit/headers.js';
import { subjectKey, type Checked, type RateLimitService } from '../ratelimit/service.js';

const decisions = new WeakMap<Principal, Checked>();

/**
 * The management API's limit, per credential, applied where principals are resolved: every route
 * that authenticates (src/auth/middleware.ts authenticate()) goes through AuthService.resolve, so
 * this hook (given to AuthService by the composition root) covers them all, including routers added later. A limited caller gets 429
 * RATE_LIMITED in the one JSON shape with Retry-After; the decision is kept for managementHeaders().
 */
export function limitManagementApi(limits: RateLimitService): ResolvedHook {
  return async (p) => {
    const subject = subjectKey({ credentialType: p.kind, orgId: p.orgId, keyId: p.keyId, clientId: p.clientId, sub: p.userId });
    const d = await limits.checkFixed('management', subject);
    if (!d) return;
    if (!d.allowed) {
      throw new AppError(429, 'RATE_LIMITED', limitedMessage(d), { limit: d.limit, window: d.window, retry_after: d.retryAfter }, rateLimitHeaders(d, d.policy));
    }
    decisions.set(p, d);
  };
}

/** Sets the rate-limit headers on every authenticated management response (mount before the routers). */
export async function managementHeaders(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } finally {
    // Error answers (403, 404...) of an authenticated caller carry them too; jsonErrors keeps headers.
    const p = ctx.state.principal as Principal | undefined;
    const d = p && decisions.get(p);
    if (d) ctx.set(rateLimitHeaders(d, d.policy));
  }
}
