import type { Context } from 'koa';
import { AppError } from '../../http/errors.js';
import { safeNext, SESSION_COOKIE, str, type Dash, type Fields, type Pages } from '../context.js';

/** The dashboard's entry, sign-in (the OAuth login template), sign-out and the organization switcher. */
export function signInPages(p: Pages): void {
  const { r, s, d } = p;

  const loginPage = (ctx: Context, data: { email?: string; error?: string; next?: string } = {}, status = 200) => {
    const next = safeNext(data.next);
    p.html(
      ctx,
      'login',
      {
        title: 'Sign in',
        action: `/dashboard/login${next ? `?next=${encodeURIComponent(next)}` : ''}`,
        csrf: p.preSessionCsrf(ctx, 'dash-login'),
        clientName: 'the Flowgate dashboard',
        email: data.email,
        error: data.error,
      },
      status,
    );
  };

  r.get('/', async (ctx) => {
    const dash = await p.loadSession(ctx);
    if (!dash) return loginPage(ctx);
    if (dash.orgs.length === 0) return p.page(ctx, dash, 'no-org', { title: 'No organization' });
    ctx.redirect(`/dashboard/orgs/${dash.orgs[0].orgId}/api-keys`);
  });

  r.get('/login', async (ctx) => {
    const dash = await p.loadSession(ctx);
    if (dash) return ctx.redirect(safeNext(String(ctx.query.next ?? '')) ?? '/dashboard');
    loginPage(ctx, { next: String(ctx.query.next ?? '') });
  });

  r.post('/login', p.form, async (ctx) => {
    const body = ctx.request.body as Fields;
    p.checkPreSessionCsrf(ctx, 'dash-login', body.csrf);
    const email = str(body.email).slice(0, 320);
    const password = str(body.password).slice(0, 1024);
    try {
      await d.loginGuard?.(ctx, email);
    } catch (err) {
      if (!(err instanceof AppError) || err.status !== 429) throw err;
      return loginPage(ctx, { email, error: err.message, next: String(ctx.query.next ?? '') }, 429);
    }
    const user = email && password ? await s.accounts.authenticate(email, password) : null;
    if (!user) return loginPage(ctx, { email, error: 'Email or password is incorrect.', next: String(ctx.query.next ?? '') }, 401);
    await p.startSession(ctx, user.id);
    await s.audit.record({ type: 'user', id: user.id, ip: ctx.ip }, { orgId: null, action: 'dashboard.signed_in', targetType: 'user', targetId: user.id });
    ctx.redirect(safeNext(String(ctx.query.next ?? '')) ?? '/dashboard');
  });

  r.post('/logout', p.form, p.signedIn, async (ctx) => {
    await d.sessions.destroy((ctx.state.dash as Dash).sessionId);
    p.setCookie(ctx, SESSION_COOKIE, null);
    ctx.redirect('/dashboard');
  });

  r.get('/switch', p.signedIn, async (ctx) => {
    const dash = ctx.state.dash as Dash;
    const org = dash.orgs.find((o) => o.orgId === String(ctx.query.org ?? ''));
    ctx.redirect(org ? `/dashboard/orgs/${org.orgId}/api-keys` : '/dashboard');
  });
}
