import { randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Services } from '../services.js';
import { AppError } from '../http/errors.js';
import { checkCsrf, csrfToken } from '../http/csrf.js';
import type { Principal } from '../auth/principal.js';
import type { Caller } from '../apikeys/service.js';
import { scopesForRole } from '../apikeys/presets.js';
import type { Membership } from '../accounts/entities.js';
import type { MembershipView } from '../accounts/service.js';
import type { InvitationsService } from '../accounts/invitations.js';
import type { ConsentsService } from '../oauth/consents.js';
import type { SessionStore, DashboardSession } from '../auth/sessions.js';
import { exact, relative } from './present.js';

export const SESSION_COOKIE = 'flowgate_dash';
/**
 * A browser's pre-session nonce: the sign-in and invitation forms' CSRF values are bound to it, so a
 * form posted from another site (which cannot read or set this cookie) is refused.
 */
export const PRE_SESSION_COOKIE = 'flowgate_dash_login';

export interface DashboardDeps {
  sessions: SessionStore;
  invitations: InvitationsService;
  consents: ConsentsService;
  /** Brute-force guard shared with the OAuth sign-in (per IP and per account); throws a 429 AppError. */
  loginGuard?: (ctx: Context, email: string) => Promise<void>;
}

/** A signed-in user. */
export interface Dash {
  sessionId: string;
  session: DashboardSession;
  userId: string;
  email: string;
  csrf: string;
  orgs: MembershipView[];
}

/** A signed-in user on one of their organization's pages. */
export interface OrgCtx extends Dash {
  orgId: string;
  orgName: string;
  membership: Membership;
  admin: boolean;
  principal: Principal;
  caller: Caller;
  base: string;
}

export type Fields = Record<string, string | string[] | undefined>;

/** What every page module receives: the services and the dashboard's shared helpers. */
export interface Pages {
  s: Services;
  d: DashboardDeps;
  r: Router;
  /** Route prefix for an organization page: form body, signed-in check (with CSRF on POST), membership. */
  org(path: string, opts?: { admin?: boolean }): [string, ...((ctx: Context, next: Next) => Promise<unknown>)[]];
  O(ctx: Context): OrgCtx;
  html(ctx: Context, view: string, data: Record<string, unknown>, status?: number): void;
  page(ctx: Context, o: OrgCtx | Dash, view: string, data: Record<string, unknown>, status?: number): void;
  loadSession(ctx: Context): Promise<Dash | null>;
  signedIn(ctx: Context, next: Next): Promise<unknown>;
  inOrg(opts?: { admin?: boolean }): (ctx: Context, next: Next) => Promise<void>;
  startSession(ctx: Context, userId: string): Promise<void>;
  setCookie(ctx: Context, name: string, value: string | null, maxAgeMs?: number): void;
  /** The browser's pre-session nonce, set when absent. */
  preSession(ctx: Context): string;
  /** The CSRF value of a pre-session form (sign-in, invitation) for `purpose`. */
  preSessionCsrf(ctx: Context, purpose: string): string;
  checkPreSessionCsrf(ctx: Context, purpose: string, presented: unknown): void;
  form: (ctx: Context, next: Next) => Promise<unknown>;
}

export function str(v: unknown): string {
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '';
}

export function list(v: unknown): string[] {
  return (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []).filter((x): x is string => typeof x === 'string');
}

/** Only same-site dashboard paths: never an open redirect. */
export function safeNext(next: string | undefined): string | undefined {
  return next && /^\/dashboard(\/[\w\-/.?=&%]*)?$/.test(next) && !next.startsWith('//') ? next : undefined;
}

export function createPages(s: Services, d: DashboardDeps, r: Router, form: (ctx: Context, next: Next) => Promise<unknown>): Pages {
  const secret = s.config.cookieSecrets[0];
  const httpsIssuer = s.config.issuer.startsWith('https:');

  const setCookie = (ctx: Context, name: string, value: string | null, maxAgeMs?: number) => {
    // Secure when the issuer is https or the request came over https (through a trusted proxy).
    const secure = httpsIssuer || ctx.secure;
    if (secure) ctx.cookies.secure = true;
    ctx.cookies.set(name, value, { httpOnly: true, sameSite: 'lax', path: '/', secure, signed: false, overwrite: true, ...(maxAgeMs && { maxAge: maxAgeMs }) });
  };

  const html = (ctx: Context, view: string, data: Record<string, unknown>, status = 200) => {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = s.render(view, data);
  };

  const page = (ctx: Context, o: OrgCtx | Dash, view: string, data: Record<string, unknown>, status = 200) => {
    const org = 'orgId' in o ? o : undefined;
    html(
      ctx,
      `dashboard/${view}`,
      {
        email: o.email,
        orgs: o.orgs,
        csrf: o.csrf,
        org: org && { id: org.orgId, name: org.orgName, role: org.membership.role, admin: org.admin, base: org.base },
        relative,
        exact,
        ...data,
      },
      status,
    );
  };

  const loadSession = async (ctx: Context): Promise<Dash | null> => {
    const sessionId = ctx.cookies.get(SESSION_COOKIE, { signed: false });
    const session = await d.sessions.get(sessionId);
    if (!session || !sessionId) return null;
    const user = await s.accounts.getUser(session.userId);
    if (!user) return null;
    return { sessionId, session, userId: user.id, email: user.email, csrf: csrfToken(secret, `dash:${sessionId}`), orgs: await s.accounts.membershipsOf(user.id) };
  };

  const preSession = (ctx: Context): string => {
    let nonce = ctx.cookies.get(PRE_SESSION_COOKIE, { signed: false });
    if (!nonce || !/^[\w-]{22,64}$/.test(nonce)) {
      nonce = randomBytes(16).toString('base64url');
      setCookie(ctx, PRE_SESSION_COOKIE, nonce);
    }
    return nonce;
  };

  /** Requires a signed-in user: otherwise the sign-in page (same template as the OAuth login). */
  const signedIn = async (ctx: Context, next: Next) => {
    const dash = await loadSession(ctx);
    if (!dash) {
      // Only URLs short enough for a Location header that every client can read.
      if (ctx.method === 'GET') return ctx.redirect(`/dashboard/login${ctx.originalUrl.length <= 2048 ? `?next=${encodeURIComponent(ctx.originalUrl)}` : ''}`);
      throw new AppError(401, 'SESSION_EXPIRED', 'Your session has ended. Sign in again.');
    }
    if (ctx.method === 'POST') checkCsrf(secret, `dash:${dash.sessionId}`, (ctx.request.body as Fields | undefined)?.csrf);
    ctx.state.dash = dash;
    await next();
  };

  /** The organization in the URL must be one of the user's: otherwise 404, as if it did not exist. */
  const inOrg =
    (opts: { admin?: boolean } = {}) =>
    async (ctx: Context, next: Next) => {
      const dash = ctx.state.dash as Dash;
      const orgId = ctx.params.orgId;
      const view = dash.orgs.find((o) => o.orgId === orgId);
      const membership = view ? await s.accounts.membership(orgId, dash.userId) : null;
      if (!view || !membership) throw new AppError(404, 'NOT_FOUND', 'This organization does not exist or you are not a member of it.');
      const admin = membership.role === 'owner' || membership.role === 'admin';
      if (opts.admin && !admin) throw new AppError(403, 'FORBIDDEN', 'Only owners and admins of this organization can open this page.');
      const principal: Principal = { kind: 'session', orgId, userId: dash.userId, role: membership.role, teamId: membership.teamId, scopes: scopesForRole(membership.role) };
      ctx.state.org = {
        ...dash,
        orgId,
        orgName: view.orgName,
        membership,
        admin,
        principal,
        caller: { actor: { type: 'user', id: dash.userId, ip: ctx.ip }, principal },
        base: `/dashboard/orgs/${orgId}`,
      } satisfies OrgCtx;
      await next();
    };

  return {
    s,
    d,
    r,
    form,
    html,
    page,
    loadSession,
    signedIn,
    inOrg,
    setCookie,
    preSession,
    preSessionCsrf: (ctx, purpose) => csrfToken(secret, `${purpose}:${preSession(ctx)}`),
    checkPreSessionCsrf: (ctx, purpose, presented) => {
      const nonce = ctx.cookies.get(PRE_SESSION_COOKIE, { signed: false }) ?? '';
      // No nonce of this browser, no form: a cross-site post cannot carry one.
      if (!/^[\w-]{22,64}$/.test(nonce)) throw new AppError(403, 'CSRF_TOKEN_INVALID', 'The form has expired or did not come from this site. Reload the page and try again.');
      checkCsrf(secret, `${purpose}:${nonce}`, presented);
    },
    org: (path, opts = {}) => [`/orgs/:orgId${path}`, form, signedIn, inOrg(opts)],
    O: (ctx) => ctx.state.org as OrgCtx,
    async startSession(ctx, userId) {
      // A fresh id at every sign-in (no fixation); the previous session, if any, ends.
      await d.sessions.destroy(ctx.cookies.get(SESSION_COOKIE, { signed: false }));
      const { id } = await d.sessions.create(userId);
      setCookie(ctx, SESSION_COOKIE, id);
      setCookie(ctx, PRE_SESSION_COOKIE, null);
    },
  };
}
