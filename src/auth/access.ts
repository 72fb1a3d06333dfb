import type { Context, Next } from 'koa';
import { authorize } from './authorize.js';
import { principalOf } from './middleware.js';
import { AppError } from '../http/errors.js';

/**
 * Organization-wide event access (audit log, webhooks): the credential needs `scope`, and the user it
 * acts for must be an owner or admin. A member's credential is refused even with the scope: the
 * audit log and webhooks show every change in the organization, not just the member's own.
 * Dashboard sessions carry every scope, so for them the role decides alone.
 */
export function requireOrgScope(scope: string) {
  return async (ctx: Context, next: Next) => {
    const p = principalOf(ctx);
    authorize(p, { scope });
    if (p.role === 'member') {
      throw new AppError(403, 'INSUFFICIENT_PERMISSIONS', 'Only organization owners and admins may do this', { required_role: 'admin', required_scope: scope });
    }
    await next();
  };
}
