import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { parseBasicAuth } from '../http/basic-auth.js';
import { afterResponse } from '../http/after-response.js';
import { namedClientId } from '../http/token-request.js';
import { OAuthError, errorReply, sendKoa } from '../http/oauth-error.js';
import { limitedMessage, rateLimitHeaders } from '../ratelimit/headers.js';
import type { Checked, RateLimitService } from '../ratelimit/service.js';
import type { Cache } from '../storage/cache.js';
import { tags } from '../storage/invalidation.js';

export interface TokenLimitDeps {
  limits: RateLimitService;
  /**
   * Client credentials (digests) that authenticated at this endpoint lately, tagged with their
   * client: a request presenting one is not a guess, so the failure budgets need not hold a place
   * for it while it runs (see limitTokenRequest).
   */
  proven: Cache<true>;
}

/** A digest of the client secret presented (Basic or client_secret_post); undefined for other methods. */
function secretDigest(authorization: string | undefined, params: URLSearchParams): string | undefined {
  const basic = parseBasicAuth(authorization);
  const id = basic?.id ?? params.get('client_id');
  const secret = basic ? basic.secret : params.get('client_secret');
  if (!id || !secret) return undefined;
  return createHash('sha256').update(id).update('\0').update(secret).digest('base64url');
}

/**
 * The token endpoint's limits, answered RFC 6749 §5.2-style: status 429, Retry-After, and
 * `slow_down`, the error RFC 8628 §7.3 registered for token endpoint responses (RFC 6749 itself has
 * no rate-limit code). Returns true when it answered.
 *
 * Failed client authentication (401 invalid_client) counts against the caller's address and against
 * the address + the client id it named; never against the named client alone, or anyone who knows a
 * public client_id could lock that client out. The client's own budget (`token`) keeps only the
 * requests it authenticated.
 *
 * A request whose outcome is unknown is counted before it runs, so parallel guesses cannot slip past
 * a failure budget, and the budget that does not apply is taken back once the answer is known. A
 * request presenting a secret that authenticated here lately is not a guess: it holds no place in
 * the failure budgets while it runs (otherwise a client sending more requests at once than its
 * address's failure budget would be refused with a correct secret), and counts as a failure
 * afterwards should it fail after all. The checks go out together, one round trip with Redis's
 * auto-pipelining.
 */
export async function limitTokenRequest(ctx: Context, d: TokenLimitDeps, params: URLSearchParams): Promise<boolean> {
  const { limits } = d;
  const authorization = ctx.get('authorization') || undefined;
  const clientId = namedClientId(authorization, params);
  const ip = ctx.ip;
  const ipClient = `${ip}:${clientId}`;
  const proof = clientId ? secretDigest(authorization, params) : undefined;
  const proven = proof !== undefined && d.proven.get(proof) === true;
  const [byIp, byIpClient, own] = await Promise.all([
    proven ? null : limits.checkFixed('tokenFailuresIp', ip),
    proven || !clientId ? null : limits.checkFixed('tokenFailuresClient', ipClient),
    clientId ? limits.checkFixed('token', `client:${clientId}`) : null,
  ]);
  const failuresBack = () => Promise.all([limits.refundFixed('tokenFailuresIp', ip, byIp), limits.refundFixed('tokenFailuresClient', ipClient, byIpClient)]);
  const ownBack = () => limits.refundFixed('token', `client:${clientId}`, own);
  const refused = [byIp, byIpClient, own].find((c): c is Checked => !!c && !c.allowed);
  if (refused) {
    await Promise.all([failuresBack(), ownBack()]);
    sendKoa(ctx, errorReply(new OAuthError(429, 'slow_down', limitedMessage(refused), rateLimitHeaders(refused, refused.policy))));
    return true;
  }
  const shown = own ?? byIp;
  if (shown) ctx.set(rateLimitHeaders(shown, shown.policy));
  if (!byIp && !own) return false;
  const version = d.proven.version;
  afterResponse(ctx, async (status) => {
    if (status === 401 || (status === 0 && !proven)) {
      // Not authenticated (or gone before the answer): the attempt stays counted against the address
      // (a proven secret that failed after all is counted now), and the client gets its own back.
      const counted = proven ? Promise.all([limits.checkFixed('tokenFailuresIp', ip), limits.checkFixed('tokenFailuresClient', ipClient)]) : undefined;
      if (proof) d.proven.delete(proof);
      await Promise.all([ownBack(), counted]);
      return;
    }
    if (proof && !proven && status >= 200 && status < 300) d.proven.set(proof, true, version, { tags: [tags.client(clientId!)] });
    await failuresBack();
  });
  return false;
}
