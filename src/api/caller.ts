import type { Context } from 'koa';
import { principalOf } from '../auth/middleware.js';
import { actorOf, type Principal } from '../auth/principal.js';
import type { Actor } from '../audit/service.js';
import type { Manager } from '../accounts/service.js';

export interface ApiCaller {
  principal: Principal;
  orgId: string;
  actor: Actor;
  /** The role rules' view of the caller (credentials made by the CLI and clients' own tokens act as admins). */
  by: Manager;
}

/** Who calls a management route: the organization is always the credential's own. */
export function apiCaller(ctx: Context): ApiCaller {
  const p = principalOf(ctx);
  return { principal: p, orgId: p.orgId, actor: actorOf(p, ctx.ip), by: { role: p.role ?? 'member', userId: p.userId ?? null } };
}
