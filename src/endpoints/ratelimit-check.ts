import type { Context, Next } from 'koa';
import { rateLimitView } from '../ratelimit/introspection.js';
import type { RateLimitService } from '../ratelimit/service.js';
import { authenticateClient, type ClientAuthDeps } from './client-auth.js';
import { isForm, readForm } from './form.js';
import { answeringOAuthErrors, oauthErrors, sendKoa } from '../http/oauth-error.js';

export const RATELIMIT_CHECK_PATH = '/ratelimit/check';

/**
 * POST /ratelimit/check: a limit decision for requests that carry no Flowgate credential, such as
 * inbound webhooks limited per client IP (10000 per minute by default). Callers are the same resource
 * servers that introspect (client authentication, introspection permission); the policy is their
 * organization's. Body (form): `category` (e.g. webhook) and `key` (e.g. the client IP).
 * Answer: `{"ratelimit": {policy, limit, remaining, reset, window, reset_after, limited?, retry_after?}}`,
 * or `{"ratelimit": null}` when no limit applies.
 */
export function rateLimitCheckEndpoint(d: { issuer: string; clientAuth: ClientAuthDeps; limits: RateLimitService }) {
  const endpointUrl = d.issuer + RATELIMIT_CHECK_PATH;
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== RATELIMIT_CHECK_PATH) return next();
    await answeringOAuthErrors(ctx, async () => {
      if (ctx.method !== 'POST' || !isForm(ctx.get('content-type'))) throw oauthErrors.invalidRequest('POST an application/x-www-form-urlencoded body');
      const { params } = await readForm(ctx.req, 4096);
      const caller = (await authenticateClient(d.clientAuth, ctx.get('authorization') || undefined, params, { endpointUrl }))!;
      if (!caller.introspect) throw oauthErrors.invalidClient('client is not allowed to introspect');
      const category = params.get('category') ?? '';
      const key = params.get('key') ?? '';
      if (!/^[a-z_]{1,32}$/.test(category) || !key || key.length > 128) {
        throw oauthErrors.invalidRequest('category (a-z, _) and key (at most 128 characters) are required');
      }
      // Per IP for webhook ingestion; otherwise the key names the subject within the caller's org.
      const d2 = await d.limits.checkCredential({ orgId: caller.orgId, clientId: `${caller.clientId}:${key}` }, category, { ip: key, resourceServer: caller.clientId });
      sendKoa(ctx, { status: 200, body: { ratelimit: d2 ? rateLimitView(d2) : null } });
    });
  };
}
