import type { Context, Next } from 'koa';
import { afterResponse } from '../http/after-response.js';
import { AppError } from '../http/errors.js';
import type { ResolvedHook } from '../auth/service.js';
import { normalizeEmail } from '../accounts/email.js';
import type { Principal } from '../auth/principal.js';
import { limitedMessage, rateLimitHeaders } from './headers.js';
import { subjectKey, type Checked, type RateLimitService } from './service.js';

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

/**
 * The sign-in forms' brute-force guard (OAuth login, dashboard sign-in, invitations for existing
 * accounts): FAILED sign-ins count, per client IP strict (rateLimits.loginIp) and per account lenient
 * and short (rateLimits.loginAccount), so an attacker hammering a victim's address locks it for at
 * most that short window, one address cannot try many accounts, and an office behind one NAT never
 * locks itself out by signing in. Each attempt is counted before the password is checked (parallel
 * guesses cannot slip past) and taken back when the answer is a success (a redirect onward).
 * Refusal throws a 429 AppError with Retry-After; the password is not checked at all then.
 */
export function loginGuard(limits: RateLimitService) {
  return async (ctx: Context, email: string): Promise<void> => {
    const account = email ? normalizeEmail(email) : '';
    const ip = await limits.checkFixed('loginIp', ctx.ip);
    const acct = account ? await limits.checkFixed('loginAccount', account) : null;
    const takeBack = () => Promise.all([limits.refundFixed('loginIp', ctx.ip, ip), account ? limits.refundFixed('loginAccount', account, acct) : undefined]);
    const refused = [ip, acct].find((d) => d && !d.allowed);
    if (refused) {
      await takeBack();
      ctx.set('Retry-After', String(refused.retryAfter));
      throw new AppError(429, 'RATE_LIMITED', `Too many sign-in attempts. Try again in ${refused.retryAfter} seconds.`);
    }
    afterResponse(ctx, async (status) => {
      if (status >= 200 && status < 400) await takeBack();
    });
  };
}
