import type { Context, Next } from 'koa';
import { AppError } from '../http/errors.js';
import type { AuthService } from './service.js';
import type { Principal } from './principal.js';
import { authorize, type AccessRequirement } from './authorize.js';
import { checkAccess } from './access.js';
import type { Access } from '../http/guard.js';

/** Resolves the caller and puts it on `ctx.state.principal`; answers 401/400 otherwise. */
export function authenticate(auth: AuthService) {
  return async (ctx: Context, next: Next) => {
    const principal = await auth.resolve({ headers: ctx.headers, query: ctx.query, ip: ctx.ip, cookies: ctx.cookies });
    ctx.state.principal = principal;
    // What guarded routes (src/http/guard.ts) call with their declared access.
    ctx.state.checkAccess = (a: Access) => checkAccess(principal, a);
    await next();
  };
}

export function principalOf(ctx: Context): Principal {
  const p = ctx.state.principal as Principal | undefined;
  if (!p) throw new AppError(500, 'INTERNAL_ERROR', 'Route used without authentication');
  return p;
}

/**
 * 403 INSUFFICIENT_PERMISSIONS naming the first missing scope. A session resolver gives dashboard
 * users every scope (API_KEY_SCOPES): their role, not scopes, limits what they may do.
 */
export function requireScope(...scopes: string[]) {
  return async (ctx: Context, next: Next) => {
    authorize(principalOf(ctx), { scope: scopes });
    await next();
  };
}

/** Route-level wrapper of authorize() for the request's principal. */
export function requireAccess(need: (ctx: Context) => AccessRequirement) {
  return async (ctx: Context, next: Next) => {
    authorize(principalOf(ctx), need(ctx));
    await next();
  };
}
