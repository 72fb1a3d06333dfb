import Router from '@koa/router';
import { randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Services } from '../compose/services.js';
import { AppError } from '../http/errors.js';
import { formBody } from '../http/body.js';
import { checkCsrf, csrfToken } from '../http/csrf.js';
import type { Principal } from '../auth/principal.js';
import type { Caller } from '../apikeys/service.js';
import { API_KEY_SCOPES, PRESET_NAMES } from '../apikeys/presets.js';
import { ALL_SCOPES, describeScope, MANAGEMENT_SCOPES, PLATFORM_SCOPES } from '../oauth/scopes.js';
import type { Membership, Role } from '../accounts/entities.js';
import { ROLES } from '../accounts/entities.js';
import type { MembershipView } from '../accounts/service.js';
import type { InvitationsService } from '../accounts/invitations.js';
import { InvalidCursorError } from '../audit/service.js';
import type { ConsentsService } from './consents.js';
import { SessionStore, type DashboardSession } from './sessions.js';
import { exact, EXPIRY_CHOICES, expiryFromForm, GRACE_CHOICES, keyStatus, PRESET_LABELS, relative } from './present.js';

export const SESSION_COOKIE = 'flowgate_dash';
const LOGIN_COOKIE = 'flowgate_dash_login';

export interface DashboardDeps {
  sessions: SessionStore;
  invitations: InvitationsService;
  consents: ConsentsService;
  /** Brute-force guard shared with the OAuth sign-in (per IP and per account); throws a 429 AppError. */
  loginGuard?: (ctx: Context, email: string) => Promise<void>;
}

interface Dash {
  sessionId: string;
  session: DashboardSession;
  userId: string;
  email: string;
  csrf: string;
  orgs: MembershipView[];
}

interface OrgCtx extends Dash {
  orgId: string;
  orgName: string;
  membership: Membership;
  admin: boolean;
  principal: Principal;
  caller: Caller;
  base: string;
}

type Fields = Record<string, string | string[] | undefined>;

/**
 * The dashboard: server-rendered pages under /dashboard. Every action calls the same services as
 * the JSON API and the CLI (ApiKeysService, ClientsService, AccountsService, ...), with a
 * `kind: 'session'` principal carrying the member's role, so the same permission rules apply.
 */
export function dashboardRoutes(s: Services, d: DashboardDeps): Router {
  const r = new Router({ prefix: '/dashboard' });
  const secret = s.config.cookieSecrets[0];
  const form = formBody('64kb');
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
    html(ctx, `dashboard/${view}`, {
      email: o.email,
      orgs: o.orgs,
      csrf: o.csrf,
      org: org && { id: org.orgId, name: org.orgName, role: org.membership.role, admin: org.admin, base: org.base },
      relative,
      exact,
      ...data,
    }, status);
  };

  // ---------------------------------------------------------------------------------------------
  // Sessions and sign-in.

  const loadSession = async (ctx: Context): Promise<Dash | null> => {
    const sessionId = ctx.cookies.get(SESSION_COOKIE, { signed: false });
    const session = await d.sessions.get(sessionId);
    if (!session || !sessionId) return null;
    const user = await s.accounts.getUser(session.userId);
    if (!user) return null;
    return { sessionId, session, userId: user.id, email: user.email, csrf: csrfToken(secret, `dash:${sessionId}`), orgs: await s.accounts.membershipsOf(user.id) };
  };

  const loginPage = (ctx: Context, data: { email?: string; error?: string; next?: string } = {}, status = 200) => {
    let nonce = ctx.cookies.get(LOGIN_COOKIE, { signed: false });
    if (!nonce || !/^[\w-]{22,64}$/.test(nonce)) {
      nonce = randomBytes(16).toString('base64url');
      setCookie(ctx, LOGIN_COOKIE, nonce);
    }
    const next = safeNext(data.next);
    html(ctx, 'login', {
      title: 'Sign in',
      action: `/dashboard/login${next ? `?next=${encodeURIComponent(next)}` : ''}`,
      csrf: csrfToken(secret, `dash-login:${nonce}`),
      clientName: 'the Flowgate dashboard',
      email: data.email,
      error: data.error,
    }, status);
  };

  /** Requires a signed-in user: otherwise the sign-in page (same template as the OAuth login). */
  const signedIn = async (ctx: Context, next: Next) => {
    const dash = await loadSession(ctx);
    if (!dash) {
      if (ctx.method === 'GET') return ctx.redirect(`/dashboard/login${ctx.originalUrl.length <= 2048 ? `?next=${encodeURIComponent(ctx.originalUrl)}` : ''}`); // a Location header clients can read
      throw new AppError(401, 'SESSION_EXPIRED', 'Your session has ended. Sign in again.');
    }
    if (ctx.method === 'POST') checkCsrf(secret, `dash:${dash.sessionId}`, (ctx.request.body as Fields | undefined)?.csrf);
    ctx.state.dash = dash;
    await next();
  };

  /** The organization in the URL must be one of the user's: otherwise 404, as if it did not exist. */
  const inOrg = (opts: { admin?: boolean } = {}) => async (ctx: Context, next: Next) => {
    const dash = ctx.state.dash as Dash;
    const orgId = ctx.params.orgId;
    const view = dash.orgs.find((o) => o.orgId === orgId);
    const membership = view ? await s.accounts.membership(orgId, dash.userId) : null;
    if (!view || !membership) throw new AppError(404, 'NOT_FOUND', 'This organization does not exist or you are not a member of it.');
    const admin = membership.role === 'owner' || membership.role === 'admin';
    if (opts.admin && !admin) throw new AppError(403, 'FORBIDDEN', 'Only owners and admins of this organization can open this page.');
    const principal: Principal = { kind: 'session', orgId, userId: dash.userId, role: membership.role, teamId: membership.teamId, scopes: API_KEY_SCOPES };
    const o: OrgCtx = {
      ...dash,
      orgId,
      orgName: view.orgName,
      membership,
      admin,
      principal,
      caller: { actor: { type: 'user', id: dash.userId, ip: ctx.ip }, principal },
      base: `/dashboard/orgs/${orgId}`,
    };
    ctx.state.org = o;
    await next();
  };

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
      if (dash && ctx.state.org) page(ctx, ctx.state.org as OrgCtx, 'error', data, status);
      else if (dash) page(ctx, dash, 'error', data, status);
      else html(ctx, 'error', { title: data.title, error: data.code, description }, status);
    }
  });

  r.get('/', async (ctx) => {
    const dash = await loadSession(ctx);
    if (!dash) return loginPage(ctx);
    if (dash.orgs.length === 0) return page(ctx, dash, 'no-org', { title: 'No organization' });
    ctx.redirect(`/dashboard/orgs/${dash.orgs[0].orgId}/api-keys`);
  });

  r.get('/login', async (ctx) => {
    const dash = await loadSession(ctx);
    if (dash) return ctx.redirect(safeNext(String(ctx.query.next ?? '')) ?? '/dashboard');
    loginPage(ctx, { next: String(ctx.query.next ?? '') });
  });

  r.post('/login', form, async (ctx) => {
    const body = ctx.request.body as Fields;
    const nonce = ctx.cookies.get(LOGIN_COOKIE, { signed: false }) ?? '';
    checkCsrf(secret, `dash-login:${nonce}`, body.csrf);
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
    await startSession(ctx, user.id);
    await s.audit.record({ type: 'user', id: user.id, ip: ctx.ip }, { orgId: null, action: 'dashboard.signed_in', targetType: 'user', targetId: user.id });
    ctx.redirect(safeNext(String(ctx.query.next ?? '')) ?? '/dashboard');
  });

  const startSession = async (ctx: Context, userId: string) => {
    // A fresh id at every sign-in (no fixation); the previous session, if any, ends.
    await d.sessions.destroy(ctx.cookies.get(SESSION_COOKIE, { signed: false }));
    const { id } = await d.sessions.create(userId);
    setCookie(ctx, SESSION_COOKIE, id);
    setCookie(ctx, LOGIN_COOKIE, null);
  };

  r.post('/logout', form, signedIn, async (ctx) => {
    await d.sessions.destroy((ctx.state.dash as Dash).sessionId);
    setCookie(ctx, SESSION_COOKIE, null);
    ctx.redirect('/dashboard');
  });

  r.get('/switch', signedIn, async (ctx) => {
    const dash = ctx.state.dash as Dash;
    const org = dash.orgs.find((o) => o.orgId === String(ctx.query.org ?? ''));
    ctx.redirect(org ? `/dashboard/orgs/${org.orgId}/api-keys` : '/dashboard');
  });

  // ---------------------------------------------------------------------------------------------
  // Invitations (no session needed: the link is the credential, once).

  type FoundInvitation = NonNullable<Awaited<ReturnType<InvitationsService['lookup']>>>;
  const invitationInvalid = (ctx: Context) =>
    html(ctx, 'error', { title: 'Invitation not valid', error: 'INVITATION_INVALID', description: 'This invitation link is not valid: it was already used, it expired, or it was mistyped. Ask for a new one.' }, 410);
  const invitationPage = (ctx: Context, found: FoundInvitation, error?: string, status = 200) =>
    html(ctx, 'dashboard/accept-invitation', { title: `Join ${found.orgName}`, ...found, csrf: csrfToken(secret, `invite:${ctx.params.token}`), action: ctx.path, error }, status);

  r.get('/invitations/:token', async (ctx) => {
    const found = await d.invitations.lookup(ctx.params.token);
    if (!found) return invitationInvalid(ctx);
    invitationPage(ctx, found);
  });

  r.post('/invitations/:token', form, async (ctx) => {
    const body = ctx.request.body as Fields;
    checkCsrf(secret, `invite:${ctx.params.token}`, body.csrf);
    const found = await d.invitations.lookup(ctx.params.token);
    if (!found) return invitationInvalid(ctx);
    const password = str(body.password).slice(0, 1024);
    if (!found.existingUser && password !== str(body.password_confirm).slice(0, 1024)) {
      return invitationPage(ctx, found, 'The two passwords do not match.', 400);
    }
    // An existing account proves itself with its password here: the same brute-force guard as the
    // sign-in forms, or an invitation link would be a way to guess anyone's password without limit.
    if (found.existingUser) {
      try {
        await d.loginGuard?.(ctx, found.invitation.email);
      } catch (err) {
        if (!(err instanceof AppError) || err.status !== 429) throw err;
        return invitationPage(ctx, found, err.message, 429);
      }
    }
    try {
      const user = await d.invitations.accept(ctx.params.token, password);
      await startSession(ctx, user.id);
      ctx.redirect(`/dashboard/orgs/${found.invitation.orgId}/api-keys`);
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500 || err.status === 410) throw err;
      invitationPage(ctx, found, err.message, err.status);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Organization pages. POST bodies are parsed before signedIn so the CSRF check can read them.

  const org = (path: string, opts: { admin?: boolean } = {}) => [`/orgs/:orgId${path}`, form, signedIn, inOrg(opts)] as const;
  const O = (ctx: Context) => ctx.state.org as OrgCtx;
  const fail = (err: unknown): AppError => {
    if (err instanceof AppError && err.status < 500 && err.status !== 404) return err;
    throw err;
  };

  r.get('/orgs/:orgId', signedIn, inOrg(), async (ctx) => ctx.redirect(`${O(ctx).base}/api-keys`));

  // API keys ----------------------------------------------------------------------------------

  const keysPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const [keys, members, teams, organization] = await Promise.all([
      s.apiKeys.list(o.caller, o.orgId),
      s.accounts.listMembers(o.orgId),
      s.accounts.listTeams(o.orgId),
      s.accounts.getOrganization(o.orgId),
    ]);
    const limit = s.config.plans[organization.plan]?.maxApiKeys ?? null;
    const active = keys.filter((k) => k.status === 'active').length;
    const emails = new Map(members.map((m) => [m.userId, m.email]));
    const teamNames = new Map(teams.map((t) => [t.id, t.name]));
    page(ctx, o, 'api-keys', {
      title: 'API Keys',
      nav: 'api-keys',
      keys: keys.map((k) => ({ ...k, statusLabel: keyStatus(k), createdByEmail: k.created_by ? (emails.get(k.created_by) ?? 'a former member') : 'CLI', teamName: k.team_id ? (teamNames.get(k.team_id) ?? '') : '' })),
      plan: organization.plan,
      limit,
      active,
      atCap: limit !== null && active >= limit,
      ...extra,
    }, status);
  };

  const newKeyPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const teams = await s.accounts.listTeams(o.orgId);
    page(ctx, o, 'api-key-new', {
      title: 'Create new API key',
      nav: 'api-keys',
      teams,
      presets: PRESET_NAMES.map((p) => ({ value: p, ...PRESET_LABELS[p] })),
      scopes: API_KEY_SCOPES.map((name) => ({ name, description: describeScope(name) })),
      expiryChoices: EXPIRY_CHOICES,
      values: { permissions: 'read_only', expiration: 'never', scopes: [] as string[] },
      errors: {},
      ...extra,
    }, status);
  };

  r.get(...org('/api-keys'), async (ctx) => keysPage(ctx));
  r.get(...org('/api-keys/new'), async (ctx) => newKeyPage(ctx));
  r.post(...org('/api-keys/new'), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    const values = {
      name: str(b.name),
      permissions: str(b.permissions) || 'read_only',
      scopes: list(b.scopes),
      expiration: str(b.expiration) || 'never',
      expires_on: str(b.expires_on),
      team_id: str(b.team_id),
      workflow_id: str(b.workflow_id).trim(),
    };
    const errs: Record<string, string> = {};
    let expiresAt: string | null = null;
    try {
      expiresAt = expiryFromForm(values.expiration, values.expires_on);
    } catch (e) {
      errs.expires_at = (e as Error).message;
    }
    if (!values.name.trim()) errs.name = 'Give the key a name, e.g. "Production API".';
    if (values.permissions === 'custom' && values.scopes.length === 0) errs.scopes = 'Choose at least one permission.';
    if (values.permissions !== 'custom' && !PRESET_NAMES.includes(values.permissions as never)) errs.permissions = 'Choose a permission level.';
    if (Object.keys(errs).length) return newKeyPage(ctx, { values, errors: errs }, 400);
    try {
      const { key, apiKey } = await s.apiKeys.create(o.caller, o.orgId, {
        name: values.name,
        ...(values.permissions === 'custom' ? { scopes: values.scopes } : { preset: values.permissions }),
        team_id: values.team_id || null,
        workflow_id: values.workflow_id || null,
        expires_at: expiresAt,
      });
      ctx.set('Cache-Control', 'no-store');
      page(ctx, o, 'secret-once', {
        title: 'Your new API key',
        nav: 'api-keys',
        heading: `API key “${apiKey.name}” created`,
        label: 'API key',
        secret: key,
        warning: 'Copy this key now and store it somewhere safe. It will not be shown again: Flowgate keeps only a hash of it.',
        back: `${o.base}/api-keys`,
        backLabel: 'Done: back to API keys',
      }, 201);
    } catch (err) {
      const e = fail(err);
      const field = String(e.details?.field ?? '');
      if (e.code === 'KEY_LIMIT_REACHED') return newKeyPage(ctx, { values, errors: { form: e.message }, limitReached: true }, e.status);
      return newKeyPage(ctx, { values, errors: { [field === 'team_id' ? 'team_id' : field === 'workflow_id' ? 'workflow_id' : field === 'expires_at' ? 'expires_at' : field === 'name' ? 'name' : 'form']: e.message } }, e.status);
    }
  });

  /** A key the signed-in member may manage (roll, delete): a member's view of another's key is masked. */
  const manageableKey = async (ctx: Context) => {
    const key = await s.apiKeys.get(O(ctx).caller, ctx.params.id);
    if (key.masked) throw new AppError(403, 'FORBIDDEN', 'Members can manage only their own API keys');
    return key;
  };
  const rollPage = async (ctx: Context, error?: string, status = 200) => {
    const key = await manageableKey(ctx);
    page(ctx, O(ctx), 'api-key-roll', { title: `Roll ${key.name}`, nav: 'api-keys', key, graceChoices: GRACE_CHOICES, selected: 86400, error }, status);
  };

  r.get(...org('/api-keys/:id/roll'), async (ctx) => rollPage(ctx));
  r.post(...org('/api-keys/:id/roll'), async (ctx) => {
    const o = O(ctx);
    const grace = Number(str((ctx.request.body as Fields).grace_seconds));
    if (!GRACE_CHOICES.some((g) => g.value === grace)) return rollPage(ctx, 'Choose how long the old secret keeps working.', 400);
    const { key, apiKey } = await s.apiKeys.roll(o.caller, ctx.params.id, grace);
    ctx.set('Cache-Control', 'no-store');
    page(ctx, o, 'secret-once', {
      title: 'Rolled API key',
      nav: 'api-keys',
      heading: `New secret for “${apiKey.name}”`,
      label: 'New API key',
      secret: key,
      note: grace === 0 ? 'The old secret stopped working now.' : `The old secret keeps working until ${exact(apiKey.previous_secret_expires_at!)}.`,
      warning: 'Copy this key now and store it somewhere safe. It will not be shown again.',
      back: `${o.base}/api-keys`,
      backLabel: 'Done: back to API keys',
    });
  });

  r.get(...org('/api-keys/:id/delete'), async (ctx) => {
    const o = O(ctx);
    const key = await manageableKey(ctx);
    page(ctx, o, 'confirm', {
      title: `Delete ${key.name}`,
      nav: 'api-keys',
      heading: `Delete the API key “${key.name}”?`,
      text: 'Requests using this key will be refused immediately. Deleted keys cannot be recovered.',
      action: ctx.path,
      button: 'Delete key',
      danger: true,
      back: `${o.base}/api-keys`,
    });
  });
  r.post(...org('/api-keys/:id/delete'), async (ctx) => {
    const o = O(ctx);
    const key = await s.apiKeys.get(o.caller, ctx.params.id);
    await s.apiKeys.revoke(o.caller, ctx.params.id);
    await keysPage(ctx, { notice: `The API key “${key.name}” was deleted. Requests using it are refused from now on.` });
  });

  // OAuth apps --------------------------------------------------------------------------------

  const appScopes = [...ALL_SCOPES].map((name) => ({ name, description: describeScope(name) }));

  r.get(...org('/oauth-apps', { admin: true }), async (ctx) => {
    const o = O(ctx);
    page(ctx, o, 'oauth-apps', { title: 'OAuth Apps', nav: 'oauth-apps', apps: await s.clients.list(o.orgId) });
  });

  const newAppPage = (ctx: Context, extra: Record<string, unknown> = {}, status = 200) =>
    page(ctx, O(ctx), 'oauth-app-new', {
      title: 'Register an OAuth app',
      nav: 'oauth-apps',
      scopes: appScopes,
      values: { kind: 'web', scopes: ['openid', 'profile', 'email', 'offline_access', 'workflows:read'], service_auth: 'client_secret_basic' },
      errors: {},
      ...extra,
    }, status);

  r.get(...org('/oauth-apps/new', { admin: true }), async (ctx) => newAppPage(ctx));
  r.post(...org('/oauth-apps/new', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    const values = {
      name: str(b.name),
      redirect_uris: str(b.redirect_uris),
      kind: str(b.kind) || 'web',
      service_auth: str(b.service_auth) || 'client_secret_basic',
      jwks: str(b.jwks),
      jwks_uri: str(b.jwks_uri).trim(),
      scopes: list(b.scopes),
      introspect: str(b.introspect) === 'on',
    };
    const redirectUris = values.redirect_uris.split(/\r?\n/).map((u) => u.trim()).filter(Boolean);
    let input: Parameters<typeof s.clients.create>[1];
    const base = { orgId: o.orgId, name: values.name, scope: values.scopes.join(' '), introspect: values.introspect };
    if (values.kind === 'service') {
      let jwks: { keys: Record<string, unknown>[] } | undefined;
      if (values.service_auth === 'private_key_jwt' && values.jwks.trim()) {
        try {
          jwks = JSON.parse(values.jwks);
        } catch {
          return newAppPage(ctx, { values, errors: { jwks: 'The JWKS is not valid JSON. Paste a document like {"keys": [ … ]}.' } }, 400);
        }
      }
      input = {
        ...base,
        redirectUris: [],
        grantTypes: ['client_credentials'],
        authMethod: values.service_auth === 'private_key_jwt' ? 'private_key_jwt' : 'client_secret_basic',
        ...(jwks && { jwks }),
        ...(values.service_auth === 'private_key_jwt' && values.jwks_uri && { jwksUri: values.jwks_uri }),
        scope: values.scopes.filter((x) => x in PLATFORM_SCOPES || x in MANAGEMENT_SCOPES).join(' ') || undefined,
      };
    } else {
      input = { ...base, redirectUris, grantTypes: ['authorization_code', 'refresh_token'], authMethod: values.kind === 'public' ? 'none' : 'client_secret_basic' };
    }
    if (!values.scopes.length) delete (input as { scope?: string }).scope;
    try {
      const { client, clientSecret } = await s.clients.create(o.caller.actor, input);
      ctx.set('Cache-Control', 'no-store');
      page(ctx, o, 'oauth-app-created', { title: 'App registered', nav: 'oauth-apps', client, clientSecret, back: `${o.base}/oauth-apps` }, 201);
    } catch (err) {
      const e = fail(err);
      const field = String(e.details?.field ?? '');
      const key = field.startsWith('redirectUris') ? 'redirect_uris' : field === 'jwks' ? 'jwks' : field === 'name' ? 'name' : field === 'scope' ? 'scopes' : 'form';
      newAppPage(ctx, { values, errors: { [key]: e.message.replace(/--jwks-file or --jwks-uri/, 'a JWKS or a JWKS URI') } }, e.status);
    }
  });

  const editAppPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const row = await s.clients.getForOrg(o.orgId, ctx.params.clientId);
    const m = row.metadata as Record<string, any>;
    page(ctx, o, 'oauth-app-edit', {
      title: `Edit ${row.name}`,
      nav: 'oauth-apps',
      client: { client_id: row.clientId, hasSecret: !!row.secretHash, grant_types: m.grant_types ?? [] },
      scopes: appScopes,
      values: { name: row.name, redirect_uris: (m.redirect_uris ?? []).join('\n'), scopes: String(m.scope ?? '').split(' ').filter(Boolean), introspect: row.introspect },
      errors: {},
      ...extra,
    }, status);
  };
  r.get(...org('/oauth-apps/:clientId/edit', { admin: true }), async (ctx) => editAppPage(ctx));
  r.post(...org('/oauth-apps/:clientId/edit', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    const values = { name: str(b.name), redirect_uris: str(b.redirect_uris), scopes: list(b.scopes), introspect: str(b.introspect) === 'on' };
    try {
      const row = await s.clients.getForOrg(o.orgId, ctx.params.clientId);
      const isCode = ((row.metadata as Record<string, any>).grant_types ?? []).includes('authorization_code');
      await s.clients.update(o.caller.actor, o.orgId, ctx.params.clientId, {
        name: values.name,
        ...(isCode && { redirectUris: values.redirect_uris.split(/\r?\n/).map((u) => u.trim()).filter(Boolean) }),
        scope: values.scopes.join(' '),
        introspect: values.introspect,
      });
      ctx.redirect(`${o.base}/oauth-apps`);
    } catch (err) {
      const e = fail(err);
      const field = String(e.details?.field ?? '');
      await editAppPage(ctx, { values, errors: { [field.startsWith('redirectUris') ? 'redirect_uris' : field === 'name' ? 'name' : field === 'scope' ? 'scopes' : 'form']: e.message } }, e.status);
    }
  });

  r.get(...org('/oauth-apps/:clientId/rotate', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const row = await s.clients.getForOrg(o.orgId, ctx.params.clientId);
    page(ctx, o, 'confirm', {
      title: `Rotate the secret of ${row.name}`,
      nav: 'oauth-apps',
      heading: `Rotate the client secret of “${row.name}”?`,
      text: 'A new secret is shown once. The current secret stops working immediately: update the app before it next asks for a token.',
      action: ctx.path,
      button: 'Rotate secret',
      back: `${o.base}/oauth-apps`,
    });
  });
  r.post(...org('/oauth-apps/:clientId/rotate', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const { client, clientSecret } = await s.clients.rotateSecret(o.caller.actor, o.orgId, ctx.params.clientId);
    ctx.set('Cache-Control', 'no-store');
    page(ctx, o, 'secret-once', {
      title: 'New client secret',
      nav: 'oauth-apps',
      heading: `New client secret for “${client.name}”`,
      label: 'Client secret',
      secret: clientSecret,
      warning: 'Copy this secret now. It will not be shown again.',
      back: `${o.base}/oauth-apps`,
      backLabel: 'Done: back to OAuth apps',
    });
  });

  r.get(...org('/oauth-apps/:clientId/delete', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const row = await s.clients.getForOrg(o.orgId, ctx.params.clientId);
    page(ctx, o, 'confirm', {
      title: `Delete ${row.name}`,
      nav: 'oauth-apps',
      heading: `Delete the OAuth app “${row.name}”?`,
      text: 'The app can no longer sign users in or get tokens. This cannot be undone.',
      action: ctx.path,
      button: 'Delete app',
      danger: true,
      back: `${o.base}/oauth-apps`,
    });
  });
  r.post(...org('/oauth-apps/:clientId/delete', { admin: true }), async (ctx) => {
    const o = O(ctx);
    await s.clients.delete(o.caller.actor, o.orgId, ctx.params.clientId);
    ctx.redirect(`${o.base}/oauth-apps`);
  });

  // Authorized apps (the signed-in user's own consents) -------------------------------------------

  r.get(...org('/authorized-apps'), async (ctx) => {
    const o = O(ctx);
    page(ctx, o, 'authorized-apps', { title: 'Authorized Apps', nav: 'authorized-apps', apps: await d.consents.listForUser(o.userId), notice: ctx.query.revoked ? 'Access revoked. The app can no longer use its tokens.' : undefined });
  });
  r.post(...org('/authorized-apps/:grantId/revoke'), async (ctx) => {
    const o = O(ctx);
    await d.consents.revoke({ type: 'user', id: o.userId, ip: ctx.ip }, o.userId, ctx.params.grantId);
    ctx.redirect(`${o.base}/authorized-apps?revoked=1`);
  });

  // Members -----------------------------------------------------------------------------------

  const membersPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const [members, pending] = await Promise.all([s.accounts.listMembers(o.orgId), o.admin ? d.invitations.listPending(o.orgId) : []]);
    page(ctx, o, 'members', { title: 'Members', nav: 'members', members, pending, roles: ROLES, owner: o.membership.role === 'owner', values: { role: 'member' }, errors: {}, ...extra }, status);
  };
  r.get(...org('/members'), async (ctx) => membersPage(ctx));
  r.post(...org('/members/invite', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    const values = { email: str(b.email), role: str(b.role) || 'member' };
    try {
      const { invitation, token } = await d.invitations.invite(o.caller.actor, o.orgId, { email: values.email, role: values.role as Role }, o.membership);
      ctx.set('Cache-Control', 'no-store');
      page(ctx, o, 'secret-once', {
        title: 'Invitation link',
        nav: 'members',
        heading: `Invitation for ${invitation.email}`,
        label: 'Invitation link',
        secret: `${s.config.issuer}/dashboard/invitations/${token}`,
        warning: `Send this link to ${invitation.email} yourself. It works once, until ${exact(invitation.expiresAt)}, and will not be shown again.`,
        back: `${o.base}/members`,
        backLabel: 'Done: back to members',
      }, 201);
    } catch (err) {
      const e = fail(err);
      await membersPage(ctx, { values, errors: { [e.details?.field === 'role' ? 'role' : 'email']: e.message } }, e.status);
    }
  });
  r.post(...org('/members/:userId/role', { admin: true }), async (ctx) => {
    const o = O(ctx);
    try {
      await s.accounts.changeRole(o.caller.actor, o.orgId, ctx.params.userId, str((ctx.request.body as Fields).role) as Role, o.membership);
      await membersPage(ctx, { notice: 'Role changed.' });
    } catch (err) {
      const e = fail(err);
      await membersPage(ctx, { rowError: { userId: ctx.params.userId, message: e.message } }, e.status);
    }
  });
  r.get(...org('/members/:userId/remove', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const member = (await s.accounts.listMembers(o.orgId)).find((m) => m.userId === ctx.params.userId);
    if (!member) throw new AppError(404, 'NOT_FOUND', 'Member not found');
    page(ctx, o, 'confirm', {
      title: `Remove ${member.email}`,
      nav: 'members',
      heading: `Remove ${member.email} from ${o.orgName}?`,
      text: 'They lose access to this organization at once. API keys they created keep working until you delete them.',
      action: ctx.path,
      button: 'Remove member',
      danger: true,
      back: `${o.base}/members`,
    });
  });
  r.post(...org('/members/:userId/remove', { admin: true }), async (ctx) => {
    const o = O(ctx);
    try {
      await s.accounts.removeMember(o.caller.actor, o.orgId, ctx.params.userId, o.membership);
      await membersPage(ctx, { notice: 'Member removed.' });
    } catch (err) {
      const e = fail(err);
      await membersPage(ctx, { rowError: { userId: ctx.params.userId, message: e.message } }, e.status);
    }
  });

  // Audit log ---------------------------------------------------------------------------------

  r.get(...org('/audit-log', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const action = str(ctx.query.action as string).trim().slice(0, 100);
    const actor = str(ctx.query.actor as string).trim().slice(0, 100);
    const cursor = str(ctx.query.cursor as string).slice(0, 200);
    const members = await s.accounts.listMembers(o.orgId);
    let result;
    let error: string | undefined;
    try {
      result = await s.audit.page(o.orgId, { action: action || undefined, actor: actor || undefined, cursor: cursor || undefined, limit: 25 });
    } catch (err) {
      if (!(err instanceof InvalidCursorError)) throw err;
      error = 'That page link is no longer valid. Start again from the newest events.';
      result = { items: [], nextCursor: null };
    }
    const emails = new Map(members.map((m) => [m.userId, m.email]));
    const qs = (c: string) => `?${new URLSearchParams({ ...(action && { action }), ...(actor && { actor }), cursor: c })}`;
    page(ctx, o, 'audit-log', {
      title: 'Audit Log',
      nav: 'audit-log',
      events: result.items.map((e) => ({
        ...e,
        who: e.actorType === 'user' ? (emails.get(e.actorId ?? '') ?? e.actorId ?? 'a user') : e.actorType === 'cli' ? 'CLI' : e.actorType === 'system' ? 'Flowgate' : `${e.actorType.replace('_', ' ')} ${e.actorId ?? ''}`,
        createdAt: new Date(e.createdAt),
      })),
      members,
      filters: { action, actor },
      nextHref: result.nextCursor ? qs(result.nextCursor) : null,
      firstHref: cursor ? `?${new URLSearchParams({ ...(action && { action }), ...(actor && { actor }) })}` : null,
      error,
    });
  });

  // Settings ----------------------------------------------------------------------------------

  const settingsPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const organization = await s.accounts.getOrganization(o.orgId);
    page(ctx, o, 'settings', {
      title: 'Settings',
      nav: 'settings',
      organization,
      planLimits: s.config.plans[organization.plan] ?? { maxApiKeys: null },
      rateLimits: Object.entries(s.config.plans[organization.plan]?.rateLimits ?? s.config.rateLimits?.defaults ?? {}).map(([category, l]) => ({ category, limit: l.limit, window: l.window })),
      rateLimitsEnabled: s.config.rateLimits?.enabled ?? false,
      keyOverrides: (await s.apiKeys.list(o.caller, o.orgId)).filter((k) => k.rate_limit).map((k) => ({ name: k.name, rateLimit: JSON.stringify(k.rate_limit) })),
      allowQuery: organization.settings.allowQueryApiKey !== false,
      errors: {},
      ...extra,
    }, status);
  };
  r.get(...org('/settings'), async (ctx) => settingsPage(ctx));
  r.post(...org('/settings', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    try {
      await s.accounts.updateOrganization(o.caller.actor, o.orgId, { name: str(b.name), settings: { allowQueryApiKey: str(b.allow_query_api_key) === 'on' } }, o.membership);
      await settingsPage(ctx, { notice: 'Settings saved.' });
    } catch (err) {
      const e = fail(err);
      await settingsPage(ctx, { errors: { name: e.message } }, e.status);
    }
  });

  // Webhooks (issue 8) ------------------------------------------------------------------------

  r.get(...org('/webhooks', { admin: true }), async (ctx) => {
    const o = O(ctx);
    page(ctx, o, 'webhooks', { title: 'Webhooks', nav: 'webhooks', endpoints: await s.webhooks.list(o.orgId) });
  });

  return r;
}

/**
 * The JSON API accepts a dashboard session too (issue 3), but only with the session's CSRF token in
 * `X-CSRF-Token`: a cross-site page cannot set that header, so the cookie alone never authorizes.
 * The organization is `X-Org-Id` or the user's first one.
 */
export function sessionResolver(s: Pick<Services, 'config' | 'accounts'>, sessions: SessionStore) {
  const secret = s.config.cookieSecrets[0];
  return async (req: { headers: Record<string, string | string[] | undefined>; cookies?: { get(name: string, opts?: { signed?: boolean }): string | undefined } }): Promise<Principal | undefined> => {
    const id = req.cookies?.get(SESSION_COOKIE, { signed: false });
    if (!id) return undefined;
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string') return undefined;
    try {
      checkCsrf(secret, `dash:${id}`, token);
    } catch {
      return undefined;
    }
    const session = await sessions.get(id);
    if (!session) return undefined;
    const wanted = req.headers['x-org-id'];
    const orgs = await s.accounts.membershipsOf(session.userId);
    const org = typeof wanted === 'string' ? orgs.find((o) => o.orgId === wanted) : orgs[0];
    if (!org) return undefined;
    return { kind: 'session', orgId: org.orgId, userId: session.userId, role: org.role, teamId: org.teamId, scopes: API_KEY_SCOPES };
  };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '';
}

function list(v: unknown): string[] {
  return (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []).filter((x): x is string => typeof x === 'string');
}

/** Only same-site dashboard paths: never an open redirect. */
function safeNext(next: string | undefined): string | undefined {
  return next && /^\/dashboard(\/[\w\-/.?=&%]*)?$/.test(next) && !next.startsWith('//') ? next : undefined;
}
