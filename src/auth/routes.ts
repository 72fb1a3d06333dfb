import Router from '@koa/router';
import { z } from 'zod';
import type { AuthService } from './service.js';
import { authenticate, principalOf } from './middleware.js';
import { authorize } from './authorize.js';
import { principalView } from './principal.js';
import { errors } from '../http/errors.js';

const checkQuery = z.object({
  org_id: z.string().min(1).optional(),
  workflow_id: z.string().min(1).optional(),
  scope: z.string().min(1).optional(),
});

/**
 * `GET /api/v1/auth/whoami`: the caller's principal (no secrets). With `org_id`, `workflow_id`
 * and/or `scope` (space-separated) it also answers whether this credential may act there: 200 with
 * the principal, or the same 403 a workflow service would give. Handy when debugging a key.
 */
export function authRoutes(auth: AuthService): Router {
  const r = new Router({ prefix: '/api/v1/auth' });
  r.get('/whoami', authenticate(auth), async (ctx) => {
    const q = checkQuery.safeParse(ctx.query);
    if (!q.success) throw errors.validation(q.error.issues[0].message, { field: q.error.issues[0].path.join('.') });
    const p = principalOf(ctx);
    authorize(p, { orgId: q.data.org_id, workflowId: q.data.workflow_id, scope: q.data.scope?.split(' ').filter(Boolean) });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { success: true, data: principalView(p) };
  });
  return r;
}
