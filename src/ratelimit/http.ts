import { parseBasicAuth } from '../http/basic-auth.js';
import type { Context, Next } from 'koa';
import { decodeJwt } from 'jose';
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

/** The client a token request is for (RFC 6749 §2.3.1 Basic, client_id, or a client assertion's iss). */
export function tokenClientId(authorization: string | undefined, params: URLSearchParams): string | undefined {
  const basic = parseBasicAuth(authorization);
  if (basic?.id) return basic.id;
  const id = params.get('client_id');
  if (id) return id;
  const assertion = params.get('client_assertion');
  if (assertion) {
    try {
      // Only to pick the budget; the provider verifies the assertion.
      const iss = decodeJwt(assertion).iss;
      if (typeof iss === 'string') return iss;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The token endpoint's limit per client, answered RFC 6749 §5.2-style: status 429, Retry-After, and
 * `slow_down`, the error RFC 8628 §7.3 registered for token endpoint responses (RFC 6749 itself has
 * no rate-limit code). Keyed by the client the request claims (the provider authenticates it after):
 * that also caps guessing a client's secret. Requests naming no client count per IP. Returns true
 * when it answered.
 */
export async function limitTokenRequest(ctx: Context, limits: RateLimitService, params: URLSearchParams): Promise<boolean> {
  const clientId = tokenClientId(ctx.get('authorization') || undefined, params);
  const d = await limits.checkFixed('token', clientId ? `client:${clientId}` : `ip:${ctx.ip}`);
  if (!d) return false;
  ctx.set(rateLimitHeaders(d, d.policy));
  if (d.allowed) return false;
  ctx.status = 429;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: 'slow_down', error_description: limitedMessage(d) };
  return true;
}

/**
 * The login form's brute-force guard: per client IP strict (rateLimits.loginIp), per account lenient
 * and short (rateLimits.loginAccount), so an attacker hammering a victim's address locks it for at
 * most that short window, while one address cannot try many accounts. Refusal renders the error page
 * (429, Retry-After); the password is not checked at all then.
 */
export function loginGuard(limits: RateLimitService) {
  return async (ctx: Context, email: string): Promise<void> => {
    const ip = await limits.checkFixed('loginIp', ctx.ip);
    const account = email ? await limits.checkFixed('loginAccount', normalizeEmail(email)) : null;
    const refused = [ip, account].find((d) => d && !d.allowed);
    if (refused) {
      ctx.set('Retry-After', String(refused.retryAfter));
      throw new AppError(429, 'RATE_LIMITED', `Too many sign-in attempts. Try again in ${refused.retryAfter} seconds.`);
    }
  };
}
