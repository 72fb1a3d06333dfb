import Router from '@koa/router';
import { z } from 'zod';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf } from '../auth/middleware.js';
import { authorize } from '../auth/authorize.js';
import { principalView } from '../auth/principal.js';
import { guard } from '../http/guard.js';
import { ok } from '../http/responses.js';

const checkQuery = z.object({
  org_id: z.string().min(1).max(100).optional().meta({ description: 'Answer 403 unless the credential may act for this organization' }),
  workflow_id: z.string().min(1).max(200).optional().meta({ description: 'Answer 403 unless the credential may act for this workflow' }),
  scope: z.string().min(1).max(2000).optional().meta({ description: 'Space-separated scopes the credential must hold' }),
});

export const PrincipalSchema = z
  .object({
    kind: z.enum(['api_key', 'access_token', 'session']),
    org_id: z.string(),
    user_id: z.string().nullable(),
    key_id: z.string().nullable(),
    client_id: z.string().nullable(),
    role: z.enum(['owner', 'admin', 'member']).nullable(),
    scopes: z.array(z.string()),
    team_id: z.string().nullable(),
    workflow_id: z.string().nullable(),
    expires_at: z.string().nullable(),
    credential_source: z.enum(['authorization', 'x-api-key', 'query']).nullable(),
    exchanged: z.boolean().meta({ description: 'An access token exchanged from an API key (RFC 8693): it acts as that key (key_id) and no further' }),
  })
  .meta({ id: 'Principal' });

/**
 * `GET /api/v1/auth/whoami`: the caller's principal (no secrets). With `org_id`, `workflow_id`
 * and/or `scope` (space-separated) it also answers whether this credential may act there: 200 with
 * the principal, or the same 403 a workflow service would give. Handy when debugging a key.
 */
export function authRoutes(auth: AuthService): Router {
  const r = new Router({ prefix: '/api/v1/auth' });
  r.get(
    '/whoami',
    authenticate(auth),
    guard(
      {
        operationId: 'whoami',
        summary: 'The calling credential, and whether it may act for an organization, workflow or scopes',
        tags: ['Credentials'],
        access: { scopes: [], restricted: 'allow' },
        query: checkQuery,
        responses: { 200: { description: 'The principal (never a secret)', schema: ok(PrincipalSchema) } },
      },
      async (ctx, { query }) => {
        const p = principalOf(ctx);
        authorize(p, { orgId: query.org_id, workflowId: query.workflow_id, scope: query.scope?.split(' ').filter(Boolean) });
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { success: true, data: principalView(p) };
      },
    ),
  );
  return r;
}
