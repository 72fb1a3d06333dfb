import Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../services.js';
import { authenticate } from '../auth/middleware.js';
import { jsonBody } from '../http/body.js';
import { guard } from '../http/guard.js';
import { ok } from '../http/responses.js';
import type { Organization } from '../accounts/entities.js';
import type { Config } from '../config/schema.js';
import { apiCaller } from './caller.js';

export const OrganizationSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    plan: z.string(),
    allow_query_api_key: z.boolean().meta({ description: 'Whether API keys are accepted in the `api-key` query parameter' }),
    max_api_keys: z.number().int().nullable().meta({ description: "The plan's cap on active keys; null: none" }),
    rate_limits_enabled: z.boolean(),
    created_at: z.string(),
  })
  .meta({ id: 'Organization' });

export const organizationUpdate = z
  .strictObject({
    name: z.string().trim().min(1, 'name is required').max(200).optional(),
    allow_query_api_key: z.boolean().optional(),
  })
  .meta({ id: 'OrganizationUpdate' });

export function organizationView(o: Organization, config: Config) {
  return {
    id: o.id,
    name: o.name,
    plan: o.plan,
    allow_query_api_key: o.settings.allowQueryApiKey !== false,
    max_api_keys: config.plans[o.plan]?.maxApiKeys ?? null,
    rate_limits_enabled: config.rateLimits?.enabled ?? false,
    created_at: new Date(o.createdAt).toISOString(),
  };
}

const tags = ['Organization'];

/** `/api/v1/organization`: the caller's organization; rate limits are under /api/v1/rate-limits. */
export function organizationRoutes(s: Services): Router {
  const r = new Router({ prefix: '/api/v1/organization' });
  r.use(authenticate(s.auth));
  r.use(jsonBody({ limit: s.config.bodyLimit }));

  r.get(
    '/',
    guard(
      { operationId: 'getOrganization', summary: "The caller's organization and its settings (any credential of it)", tags, access: { scopes: [], restricted: 'allow' }, responses: { 200: { description: 'The organization', schema: ok(OrganizationSchema) } } },
      async (ctx) => {
        ctx.body = { success: true, data: organizationView(await s.accounts.getOrganization(apiCaller(ctx).orgId), s.config) };
      },
    ),
  );
  r.patch(
    '/',
    guard(
      {
        operationId: 'updateOrganization',
        summary: "Rename the organization or change its settings",
        tags,
        access: { scopes: ['settings:manage'], admin: true, restricted: 'refuse' },
        body: organizationUpdate,
        responses: { 200: { description: 'The organization', schema: ok(OrganizationSchema) } },
      },
      async (ctx, { body }) => {
        const c = apiCaller(ctx);
        const org = await s.accounts.updateOrganization(
          c.actor,
          c.orgId,
          { ...(body.name !== undefined && { name: body.name }), ...(body.allow_query_api_key !== undefined && { settings: { allowQueryApiKey: body.allow_query_api_key } }) },
          c.by,
        );
        ctx.body = { success: true, data: organizationView(org, s.config) };
      },
    ),
  );
  return r;
}
