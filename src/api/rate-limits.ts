import Router from '@koa/router';
import { z } from 'zod';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf } from '../auth/middleware.js';
import { actorOf } from '../auth/principal.js';
import { jsonBody } from '../http/body.js';
import { guard } from '../http/guard.js';
import { ok } from '../http/responses.js';
import type { ApiKeysService } from '../apikeys/service.js';
import type { RateLimitOverrides } from '../ratelimit/overrides.js';

const limitsInput = z
  .strictObject({
    limits: z
      .record(z.string(), z.unknown())
      .nullable()
      .meta({ description: 'Per category (token, read, write, introspection, management, webhook, ...): `{"limit": N, "window": "1m" | seconds}`; null clears the overrides' }),
  })
  .meta({ id: 'RateLimitOverrides' });

const OrgLimitsSchema = z
  .object({
    plan: z.string(),
    plan_limits: z.record(z.string(), z.unknown()),
    organization_overrides: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: 'OrganizationRateLimits' });
const KeyLimitsSchema = z.object({ id: z.string(), rate_limit: z.record(z.string(), z.unknown()).nullable() }).meta({ id: 'ApiKeyRateLimits' });
const tags = ['Rate limits'];

/**
 * GET /api/v1/rate-limits: the organization's plan limits and overrides (api_keys:read).
 * PUT /api/v1/rate-limits: the organization's overrides, `{"limits": {...} | null}`.
 * PUT /api/v1/rate-limits/api-keys/{id}: one key's overrides.
 * Changing limits needs api_keys:write and an owner or admin behind the credential; the
 * organization's limits need an unrestricted credential, a key's are within the credential's reach.
 */
export function rateLimitRoutes(d: { overrides: RateLimitOverrides; apiKeys: ApiKeysService; auth: AuthService; bodyLimit: string }): Router {
  const r = new Router({ prefix: '/api/v1/rate-limits' });
  r.use(authenticate(d.auth));
  r.use(jsonBody({ limit: d.bodyLimit }));

  r.get(
    '/',
    guard(
      { operationId: 'getRateLimits', summary: "The organization's plan limits and its overrides", tags, access: { scopes: ['api_keys:read'], restricted: 'allow' }, responses: { 200: { description: 'Limits', schema: ok(OrgLimitsSchema) } } },
      async (ctx) => {
        ctx.body = { success: true, data: await d.overrides.show(principalOf(ctx).orgId) };
      },
    ),
  );
  r.put(
    '/',
    guard(
      {
        operationId: 'setRateLimits',
        summary: "Set the organization's rate-limit overrides",
        tags,
        access: { scopes: ['api_keys:write'], admin: true, restricted: 'refuse' },
        body: limitsInput,
        responses: { 200: { description: 'Limits', schema: ok(OrgLimitsSchema) } },
      },
      async (ctx, { body }) => {
        const p = principalOf(ctx);
        ctx.body = { success: true, data: await d.overrides.setForOrganization(actorOf(p, ctx.ip), p.orgId, body.limits) };
      },
    ),
  );
  r.put(
    '/api-keys/:id',
    guard(
      {
        operationId: 'setApiKeyRateLimits',
        summary: "Set one API key's rate-limit overrides",
        tags,
        access: { scopes: ['api_keys:write'], admin: true, restricted: 'allow' },
        params: z.object({ id: z.string() }),
        body: limitsInput,
        responses: { 200: { description: "The key's limits", schema: ok(KeyLimitsSchema) } },
      },
      async (ctx, { params, body }) => {
        const p = principalOf(ctx);
        const actor = actorOf(p, ctx.ip);
        // 404 for other organizations' keys, 403 for keys outside a restricted credential's reach.
        await d.apiKeys.getManageable({ actor, principal: p }, params.id);
        ctx.body = { success: true, data: await d.overrides.setForKey(actor, p.orgId, params.id, body.limits) };
      },
    ),
  );
  return r;
}
