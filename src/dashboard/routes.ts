import Router from '@koa/router';
import type { Services } from '../services.js';
import { AppError } from '../http/errors.js';
import { formBody } from '../http/body.js';
import { createPages, type Dash, type DashboardDeps, type OrgCtx } from './context.js';
import { signInPages } from './pages/sign-in.js';
import { invitationPages } from './pages/invitations.js';
import { apiKeyPages } from './pages/api-keys.js';
import { oauthAppPages } from './pages/oauth-apps.js';
import { authorizedAppPages } from './pages/authorized-apps.js';
import { memberPages } from './pages/members.js';
import { auditLogPages } from './pages/audit-log.js';
import { settingsPages } from './pages/settings.js';
import { webhookPages } from './pages/webhooks.js';

export { SESSION_COOKIE, type DashboardDeps } from './context.js';
export { sessionResolver } from './session-resolver.js';

/**
 * The dashboard: server-rendered pages under /dashboard, one module per page in pages/. Every action
 * calls the same services as the JSON API and the CLI, with a `kind: 'session'` principal carrying
 * the member's role, so the same permission rules apply; a service's refusal is shown beside the
 * form field at fault (form-errors.ts).
 */
export function dashboardRoutes(s: Services, d: DashboardDeps): Router {
  const r = new Router({ prefix: '/dashboard' });
  const p = createPages(s, d, r, formBody('64kb'));

  // Errors on dashboard pages are pages, in words; the service's message is the one shown.
  r.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const e = err as AppError & { status?: number; expose?: boolean };
      const status = err instanceof AppError ? err.status : e.status && e.status < 500 ? e.status : 500;
      if (status >= 500) s.logger.error({ err }, 'dashboard page failed');
      const description = err instanceof AppError ? err.message : status < 500 ? 'The request could not be read.' : 'Something went wrong on our side. Try again in a moment.';
      const dash = ctx.state.dash as Dash | undefined;
      const data = { title: status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong', code: err instanceof AppError ? err.code : 'ERROR', description };
      if (dash && ctx.state.org) p.page(ctx, ctx.state.org as OrgCtx, 'error', data, status);
      else if (dash) p.page(ctx, dash, 'error', data, status);
      else p.html(ctx, 'error', { title: data.title, error: data.code, description }, status);
    }
  });

  signInPages(p);
  invitationPages(p);
  r.get('/orgs/:orgId', p.signedIn, p.inOrg(), async (ctx) => ctx.redirect(`${p.O(ctx).base}/api-keys`));
  apiKeyPages(p);
  oauthAppPages(p);
  authorizedAppPages(p);
  memberPages(p);
  auditLogPages(p);
  settingsPages(p);
  webhookPages(p);
  return r;
}
