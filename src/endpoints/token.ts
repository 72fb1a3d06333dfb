import type { Context, Next } from 'koa';
import { JWT_BEARER, rewriteJwtBearer } from '../oauth/grants/jwt-bearer.js';
import { exchangeApiKey, TOKEN_EXCHANGE, type ExchangeDeps } from './token-exchange.js';
import type { ClientDirectory } from '../credentials/client-directory.js';
import { authenticateClient, presentedMethods, type ClientAuthDeps } from './client-auth.js';
import { isForm, readForm } from './form.js';
import { answeringOAuthErrors, OAuthError, oauthErrors, sendKoa } from '../http/oauth-error.js';
import { parseBasicAuth } from '../http/basic-auth.js';

export const TOKEN_PATH = '/token';

export interface TokenEndpointDeps {
  issuer: string;
  clientAuth: ClientAuthDeps;
  clients: ClientDirectory;
  exchange: ExchangeDeps;
  /** The per-client rate limit: answers the request itself (429) and returns true when refused. */
  limit?: (ctx: Context, params: URLSearchParams) => Promise<boolean>;
}

/**
 * Runs in front of oidc-provider's token endpoint. Reads and checks the body once (RFC 6749 §3.2: no
 * repeated parameter; §2.3: one client authentication method), applies the rate limit, and:
 * - a grant type the named client is not registered for: once the client authenticates, answers
 *   `unauthorized_client` (RFC 6749 §5.2), as the provider would not;
 * - jwt-bearer (RFC 7523 §2.1): validates and rewrites the parameters, then lets the provider go on;
 * - token exchange of an API key (RFC 8693): answers itself;
 * - anything else: passes through. The provider reads the already-consumed body from `req.body`.
 */
export function tokenEndpoint(d: TokenEndpointDeps) {
  const endpointUrl = d.issuer + TOKEN_PATH;
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' || ctx.path !== TOKEN_PATH || !isForm(ctx.get('content-type'))) return next();
    let passOn = false;
    await answeringOAuthErrors(ctx, async () => {
      let { raw, params } = await readForm(ctx.req, 56 * 1024);
      if (d.limit && (await d.limit(ctx, params))) return;
      const authorization = ctx.get('authorization') || undefined;
      if (presentedMethods(authorization, params).length > 1) throw oauthErrors.invalidRequest('use exactly one client authentication method (RFC 6749 §2.3)');
      const grantType = params.get('grant_type') ?? '';
      // Token exchange with the key as the only credential; a client that authenticates goes on to
      // the provider, which authenticates it and calls the same exchange (registerTokenExchangeGrant).
      if (grantType === TOKEN_EXCHANGE && presentedMethods(authorization, params).length === 0 && !params.has('client_id')) {
        return sendKoa(ctx, await exchangeApiKey(d.exchange, params, null));
      }
      if (grantType && (await unauthorizedForGrant(d, authorization, params, grantType, endpointUrl))) {
        throw oauthErrors.unauthorizedClient('the client is not registered for this grant type');
      }
      if (grantType === JWT_BEARER) {
        const error = rewriteJwtBearer(params, authorization);
        if (error) throw new OAuthError(400, error[0], error[1]);
        raw = params.toString();
      }
      (ctx.req as { body?: string }).body = raw;
      passOn = true;
    });
    if (passOn) await next();
  };
}

/**
 * Whether the request names a registered client that may not use this grant type and proves to be
 * that client. A failed authentication is left to the provider (it answers invalid_client).
 */
async function unauthorizedForGrant(d: TokenEndpointDeps, authorization: string | undefined, params: URLSearchParams, grantType: string, endpointUrl: string): Promise<boolean> {
  const id = parseBasicAuth(authorization)?.id ?? params.get('client_id') ?? '';
  const client = id ? await d.clients.get(id) : null;
  if (!client || client.grantTypes.includes(grantType)) return false;
  if (client.authMethod === 'none') return presentedMethods(authorization, params).length === 0;
  try {
    return (await authenticateClient(d.clientAuth, authorization, params, { endpointUrl })) !== null;
  } catch {
    return false;
  }
}
