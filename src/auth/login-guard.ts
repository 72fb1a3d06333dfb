import type { Context } from 'koa';
import { afterResponse } from '../http/after-response.js';
import { AppError } from '../http/errors.js';
import { normalizeEmail } from '../accounts/email.js';
import type { RateLimitService } from '../ratelimit/service.js';

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
