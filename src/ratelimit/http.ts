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

/** Runs `settle(status)` once the response has gone out (or the connection closed before it did). */
function afterResponse(ctx: Context, settle: (status: number) => Promise<void>): void {
  ctx.res.once('close', () => {
    void settle(ctx.res.writableFinished ? ctx.res.statusCode : 0).catch(() => {});
  });
}

/**
 * The token endpoint's limits, answered RFC 6749 §5.2-style: status 429, Retry-After, and
 * `slow_down`, the error RFC 8628 §7.3 registered for token endpoint responses (RFC 6749 itself has
 * no rate-limit code). Returns true when it answered.
 *
 * Failed client authentication (401 invalid_client) counts against the caller's address and against
 * the address + the client id it named; never against the named client alone, or anyone who knows a
 * public client_id could lock that client out. The client's own budget (`token`) keeps only the
 * requests it authenticated. Every budget is counted before the request runs (parallel requests
 * cannot slip past) and the one that does not apply is taken back once the answer is known.
 */
export async function limitTokenRequest(ctx: Context, limits: RateLimitService, params: URLSearchParams): Promise<boolean> {
  const clientId = tokenClientId(ctx.get('authorization') || undefined, params);
  const ip = ctx.ip;
  const byIp = await limits.checkFixed('tokenFailuresIp', ip);
  const byIpClient = clientId ? await limits.checkFixed('tokenFailuresClient', `${ip}:${clientId}`) : null;
  const own = clientId ? await limits.checkFixed('token', `client:${clientId}`) : null;
  const failuresBack = () => Promise.all([limits.refundFixed('tokenFailuresIp', ip, byIp), clientId ? limits.refundFixed('tokenFailuresClient', `${ip}:${clientId}`, byIpClient) : undefined]);
  const ownBack = () => (clientId ? limits.refundFixed('token', `client:${clientId}`, own) : Promise.resolve());
  const refused = [byIp, byIpClient, own].find((d) => d && !d.allowed);
  if (refused) {
    await Promise.all([failuresBack(), ownBack()]);
    ctx.set(rateLimitHeaders(refused, refused.policy));
    ctx.status = 429;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: 'slow_down', error_description: limitedMessage(refused) };
    return true;
  }
  const shown = own ?? byIp;
  if (shown) ctx.set(rateLimitHeaders(shown, shown.policy));
  if (!byIp && !own) return false;
  afterResponse(ctx, async (status) => {
    // Not authenticated: the attempt stays counted against the address, and the client gets its own back.
    if (status === 0 || status === 401) await ownBack();
    else await failuresBack();
  });
  return false;
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
