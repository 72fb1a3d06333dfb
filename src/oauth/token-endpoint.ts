import querystring from 'node:querystring';
import type { Context, Next } from 'koa';
import { readRawBody } from '../http/raw-body.js';
import { JWT_BEARER, rewriteJwtBearer } from './grants/jwt-bearer.js';
import { exchangeApiKey, TOKEN_EXCHANGE, type ExchangeDeps } from './grants/token-exchange.js';

/**
 * Runs in front of oidc-provider's token endpoint. Reads the body once and:
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
    let raw: string;
    try {
      raw = (await readRawBody(ctx.req, 56 * 1024)).toString('utf8');
    } catch {
      return respond(ctx, 413, { error: 'invalid_request', error_description: 'request body too large' });
    }
    if (limit && (await limit(ctx, new URLSearchParams(raw)))) return;
    const params = querystring.parse(raw);
    if (params.grant_type === JWT_BEARER) {
      const error = rewriteJwtBearer(params);
      if (error) return respond(ctx, 400, { error: error[0], error_description: error[1] });
      raw = querystring.stringify(params);
    } else if (params.grant_type === TOKEN_EXCHANGE) {
      const result = await exchangeApiKey(exchange, new URLSearchParams(raw));
      return respond(ctx, result.status, result.body);
    }
    (ctx.req as any).body = raw;
    return next();
  };
}

function respond(ctx: Context, status: number, body: Record<string, unknown>) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.body = body;
}
