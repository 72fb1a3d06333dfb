import type { Context, Next } from 'koa';
import { readForm, sendOAuth, sendOAuthError } from './form-endpoint.js';
import { JWT_BEARER, rewriteJwtBearer } from './grants/jwt-bearer.js';
import { exchangeApiKey, TOKEN_EXCHANGE, type ExchangeDeps } from './grants/token-exchange.js';

/**
 * Runs in front of oidc-provider's token endpoint. Reads and parses the body once and:
 * - jwt-bearer (RFC 7523 §2.1): validates and rewrites the parameters, then lets the provider go on;
 * - token exchange of an API key (RFC 8693): answers itself;
 * - anything else: passes through unchanged.
 * The provider reads an already-consumed body from `req.body`.
 */
export function tokenEndpointPreprocessor(
  tokenPath: string,
  exchange: ExchangeDeps,
  /** Rate limit per client (issue 5); answers the request itself (429) and returns true when refused. */
  limit?: (ctx: Context, params: URLSearchParams) => Promise<boolean>,
) {
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' || ctx.path !== tokenPath || !ctx.is('application/x-www-form-urlencoded')) return next();
    let raw = await readForm(ctx, 56 * 1024);
    if (raw === undefined) return;
    const params = new URLSearchParams(raw);
    if (limit && (await limit(ctx, params))) return;
    // A repeated grant_type is the provider's to refuse (RFC 6749 §3.2): dispatch only on a single one.
    const grantTypes = params.getAll('grant_type');
    const grantType = grantTypes.length === 1 ? grantTypes[0] : undefined;
    if (grantType === JWT_BEARER) {
      const error = rewriteJwtBearer(params);
      if (error) return sendOAuthError(ctx, 400, error[0], error[1]);
      raw = params.toString();
    } else if (grantType === TOKEN_EXCHANGE) {
      const result = await exchangeApiKey(exchange, params);
      return sendOAuth(ctx, result.status, result.body);
    }
    (ctx.req as any).body = raw;
    return next();
  };
}

