import type { Context, Next } from 'koa';
import { readForm, sendOAuth, sendOAuthError } from '../oauth/form-endpoint.js';
import { authenticateCaller, CallerAuthError, type CallerAuthDeps } from '../introspection/client-auth.js';
import { rateLimitView } from './introspection.js';
import type { RateLimitService } from './service.js';

/**
 * POST /ratelimit/check: a limit decision for requests that carry no Flowgate credential, such as
 * inbound webhooks limited per client IP (seed 002: 10000 per minute). Callers are the same resource
 * servers that introspect (client authentication, introspection permission); the policy is their
 * organization's. Body (form): `category` (e.g. webhook) and `key` (e.g. the client IP).
 * Answer: `{"ratelimit": {policy, limit, remaining, reset, window, reset_after, limited?, retry_after?}}`,
 * or `{"ratelimit": null}` when no limit applies.
 */
export function rateLimitCheckEndpoint(path: string, auth: CallerAuthDeps, limits: RateLimitService) {
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== path) return next();
    const fail = (status: number, error: string, description: string) => sendOAuthError(ctx, status, error, description);
    if (ctx.method !== 'POST' || !ctx.is('application/x-www-form-urlencoded')) {
      return fail(400, 'invalid_request', 'POST an application/x-www-form-urlencoded body');
    }
    const raw = await readForm(ctx, 4096);
    if (raw === undefined) return;
    const params = new URLSearchParams(raw);
    let caller;
    try {
      caller = await authenticateCaller(auth, ctx.get('authorization') || undefined, params);
    } catch (err) {
      if (err instanceof CallerAuthError) return fail(401, 'invalid_client', err.description);
      throw err;
    }
    const category = params.get('category') ?? '';
    const key = params.get('key') ?? '';
    if (!/^[a-z_]{1,32}$/.test(category) || !key || key.length > 128) {
      return fail(400, 'invalid_request', 'category (a-z, _) and key (at most 128 characters) are required');
    }
    // Per IP for webhook ingestion; otherwise the key names the subject within the caller's org.
    const d = await limits.checkCredential({ orgId: caller.orgId, clientId: `${caller.clientId}:${key}` }, category, { ip: key });
    sendOAuth(ctx, 200, { ratelimit: d ? rateLimitView(d) : null });
  };
}
