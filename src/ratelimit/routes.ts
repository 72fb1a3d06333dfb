import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf, requireScope } from '../auth/middleware.js';
import { actorOf, isOrgAdmin } from '../auth/principal.js';
import { authErrors } from '../auth/errors.js';
import { jsonBody, parseInput } from '../http/body.js';
import type { RateLimitOverrides } from './overrides.js';

const input = z.object({ limits: z.record(z.string(), z.unknown()).nullable() }).strict();

/**
 * GET /api/v1/rate-limits: the organization's plan limits and overrides (api_keys:read).
 * PUT /api/v1/rate-limits: the organization's overrides, `{"limits": {...} | null}`.
 * PUT /api/v1/rate-limits/api-keys/{id}: one key's overrides.
 * Changing limits needs api_keys:write and an owner or admin behind the credential.
 */
export function rateLimitRoutes(d: { overrides: RateLimitOverrides; auth: AuthService; bodyLimit: string }): Router {
  const r = new Router({ prefix: '/api/v1/rate-limits' });
  r.use(authenticate(d.auth));
  r.use(jsonBody({ limit: d.bodyLimit }));
  const admin = (ctx: Context) => {
    const p = principalOf(ctx);
    if (!isOrgAdmin(p)) throw authErrors.notAdmin();
    return p;
  };

  r.get('/', requireScope('api_keys:read'), async (ctx) => {
    ctx.body = { success: true, data: await d.overrides.show(principalOf(ctx).orgId) };
  });
  r.put('/', requireScope('api_keys:write'), async (ctx) => {
    const p = admin(ctx);
    const { limits } = parseInput(input, ctx.request.body);
    ctx.body = { success: true, data: await d.overrides.setForOrganization(actorOf(p, ctx.ip), p.orgId, limits) };
  });
  r.put('/api-keys/:id', requireScope('api_keys:write'), async (ctx) => {
    const p = admin(ctx);
    const { limits } = parseInput(input, ctx.request.body);
    ctx.body = { success: true, data: await d.overrides.setForKey(actorOf(p, ctx.ip), p.orgId, ctx.params.id, limits) };
  });
  return r;
}
