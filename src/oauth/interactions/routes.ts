import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountsService } from '../../accounts/service.js';
import { checkCsrf, csrfToken } from '../../http/csrf.js';
import { AppError } from '../../http/errors.js';
import { formBody } from '../../http/body.js';
import type { Renderer } from '../../http/render.js';
import type { ConsentsService } from '../consents.js';
import { describeScope, RESOURCE_SCOPES } from '../scopes.js';

export interface InteractionDeps {
  provider: Provider;
  accounts: AccountsService;
  consents: ConsentsService;
  render: Renderer;
  csrfSecret: string;
  /** Optional brute-force guard for the login form (rate-limit issue). */
  loginGuard?: (ctx: Context, email: string) => Promise<void>;
}

/** Login and consent pages for oidc-provider interactions (its example's pattern, our pages). */
export function interactionRoutes(deps: InteractionDeps): Router {
  const { provider, accounts, render, csrfSecret } = deps;
  const router = new Router({ prefix: '/interaction' });
  const form = formBody('16kb');

  const page = (ctx: Context, view: string, data: Record<string, unknown>, status = 200) => {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = render(view, data);
  };

  router.get('/:uid', async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const uid = details.uid;
    if (uid !== ctx.params.uid) throw new AppError(400, 'BAD_REQUEST', 'Interaction mismatch');
    const client = await provider.Client.find(String(details.params.client_id));
    const csrf = csrfToken(csrfSecret, uid);
    if (details.prompt.name === 'login') {
      return page(ctx, 'login', {
        title: 'Sign in',
        action: `/interaction/${uid}/login`,
        abortAction: `/interaction/${uid}/abort`,
        csrf,
        clientName: client?.clientName,
      });
    }
    const accountId = details.session?.accountId;
    const user = accountId ? await accounts.getUser(accountId) : null;
    if (!user) throw new AppError(400, 'BAD_REQUEST', 'No signed-in user for this interaction');
    const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
    const orgs = await accounts.membershipsOf(user.id);
    return page(ctx, 'consent', {
      title: `Authorize ${client?.clientName ?? 'application'}`,
      clientName: client?.clientName ?? String(details.params.client_id),
      scopes: requested.map((name) => ({ name, description: describeScope(name) })),
      orgs,
      email: user.email,
      csrf,
      confirmAction: `/interaction/${uid}/confirm`,
      abortAction: `/interaction/${uid}/abort`,
    });
  });

  router.post('/:uid/login', form, async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const body = ctx.request.body as Record<string, string>;
    checkCsrf(csrfSecret, details.uid, body.csrf);
    if (details.prompt.name !== 'login') throw new AppError(400, 'BAD_REQUEST', 'This step is not a login');
    const email = String(body.email ?? '').slice(0, 320);
    const password = String(body.password ?? '').slice(0, 1024);
    if (deps.loginGuard) await deps.loginGuard(ctx, email);
    const user = email && password ? await accounts.authenticate(email, password) : null;
    if (!user) {
      const client = await provider.Client.find(String(details.params.client_id));
      return page(
        ctx,
        'login',
        {
          title: 'Sign in',
          action: `/interaction/${details.uid}/login`,
          abortAction: `/interaction/${details.uid}/abort`,
          csrf: csrfToken(csrfSecret, details.uid),
          clientName: client?.clientName,
          email,
          error: 'Email or password is incorrect.',
        },
        401,
      );
    }
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
    ctx.respond = false;
  });

  router.post('/:uid/confirm', form, async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const body = ctx.request.body as Record<string, string>;
    checkCsrf(csrfSecret, details.uid, body.csrf);
    const { prompt, params, session } = details;
    if (prompt.name !== 'consent' || !session?.accountId) throw new AppError(400, 'BAD_REQUEST', 'This step is not a consent');
    const accountId = session.accountId;
    const orgId = String(body.org_id ?? '');
    // The organization must be one the user belongs to: never trust the posted value alone.
    const membership = await accounts.membership(orgId, accountId);
    if (!membership) throw new AppError(403, 'FORBIDDEN', 'You are not a member of that organization');

    // A grant acts for one organization. Extending it for another organization would silently move
    // the tokens already issued from it (refresh tokens) to that organization, so a different
    // choice starts a new grant holding everything requested now.
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (grant) {
      const previousOrg = await deps.consents.orgOf(details.grantId!);
      if (previousOrg && previousOrg !== orgId) grant = undefined;
    }
    const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (!grant) {
      grant = new provider.Grant({ accountId, clientId: String(params.client_id) });
      const requested = String(params.scope ?? '').split(' ').filter(Boolean);
      // The provider already refused unknown scopes; every requested one is a provider scope.
      if (requested.length) grant.addOIDCScope(requested.join(' '));
      const resourceScopes = requested.filter((s) => RESOURCE_SCOPES.includes(s));
      const resources = ([] as unknown[]).concat(params.resource ?? []).map(String);
      if (resourceScopes.length) for (const r of resources) grant.addResourceScope(r, resourceScopes.join(' '));
    } else if (missing.missingOIDCScope) {
      grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    }
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();

    await deps.consents.record({ type: 'user', id: accountId, ip: ctx.ip }, { grantId, userId: accountId, clientId: String(params.client_id), orgId, scope: String(params.scope ?? '') });
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.respond = false;
  });

  router.post('/:uid/abort', form, async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    checkCsrf(csrfSecret, details.uid, (ctx.request.body as Record<string, string>).csrf);
    await provider.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'The user denied the request' },
      { mergeWithLastSubmission: false },
    );
    ctx.respond = false;
  });

  return router;
}
