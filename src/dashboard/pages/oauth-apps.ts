import type { Context } from 'koa';
import { parse } from '../../http/guard.js';
import { clientRegistrationInput, clientUpdateInput } from '../../oauth/clients-service.js';
import { ALL_SCOPES, describeScope, MANAGEMENT_SCOPES, PLATFORM_SCOPES } from '../../oauth/scopes.js';
import { formError } from '../form-errors.js';
import { list, str, type Fields, type Pages } from '../context.js';

/** The service's fields → the app forms' inputs. */
const APP_FIELDS = { client_name: 'name', redirect_uris: 'redirect_uris', jwks: 'jwks', jwks_uri: 'jwks', scope: 'scopes' };

/** OAuth Apps (owners and admins): register, edit, rotate the secret, delete. */
export function oauthAppPages(p: Pages): void {
  const { r, s, org, O } = p;
  const appScopes = [...ALL_SCOPES].map((name) => ({ name, description: describeScope(name) }));

  r.get(...org('/oauth-apps', { admin: true }), async (ctx) => {
    const o = O(ctx);
    p.page(ctx, o, 'oauth-apps', { title: 'OAuth Apps', nav: 'oauth-apps', apps: await s.clients.list(o.orgId) });
  });

  const newAppPage = (ctx: Context, extra: Record<string, unknown> = {}, status = 200) =>
    p.page(
      ctx,
      O(ctx),
      'oauth-app-new',
      {
        title: 'Register an OAuth app',
        nav: 'oauth-apps',
        scopes: appScopes,
        values: { kind: 'web', scopes: ['openid', 'profile', 'email', 'offline_access', 'workflows:read'], service_auth: 'client_secret_basic' },
        errors: {},
        ...extra,
      },
      status,
    );

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
    const service = values.kind === 'service';
    const keyed = service && values.service_auth === 'private_key_jwt';
    let jwks: unknown;
    if (keyed && values.jwks.trim()) {
      try {
        jwks = JSON.parse(values.jwks);
      } catch {
        return newAppPage(ctx, { values, errors: { jwks: 'The JWKS is not valid JSON. Paste a document like {"keys": [ … ]}.' } }, 400);
      }
    }
    const scope = (service ? values.scopes.filter((x) => x in PLATFORM_SCOPES || x in MANAGEMENT_SCOPES) : values.scopes).join(' ');
    try {
      const input = parse(clientRegistrationInput, {
        client_name: values.name,
        kind: service ? 'service' : values.kind === 'public' ? 'public' : 'web',
        ...(!service && { redirect_uris: values.redirect_uris.split(/\r?\n/).map((u) => u.trim()).filter(Boolean) }),
        token_endpoint_auth_method: keyed ? 'private_key_jwt' : values.kind === 'public' ? 'none' : 'client_secret_basic',
        ...(jwks !== undefined && { jwks }),
        ...(keyed && values.jwks_uri && { jwks_uri: values.jwks_uri }),
        ...(scope && { scope }),
        introspection: values.introspect,
      });
      const { client, clientSecret } = await s.clients.register(o.caller.actor, o.orgId, input);
      ctx.set('Cache-Control', 'no-store');
      p.page(ctx, o, 'oauth-app-created', { title: 'App registered', nav: 'oauth-apps', client, clientSecret, back: `${o.base}/oauth-apps` }, 201);
    } catch (err) {
      const f = formError(err, APP_FIELDS);
      newAppPage(ctx, { values, errors: f.errors }, f.status);
    }
  });

  const editAppPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const row = await s.clients.getForOrg(o.orgId, ctx.params.clientId);
    const m = row.metadata as Record<string, any>;
    p.page(
      ctx,
      o,
      'oauth-app-edit',
      {
        title: `Edit ${row.name}`,
        nav: 'oauth-apps',
        client: { client_id: row.clientId, hasSecret: !!row.secretHash, grant_types: m.grant_types ?? [] },
        scopes: appScopes,
        values: { name: row.name, redirect_uris: (m.redirect_uris ?? []).join('\n'), scopes: String(m.scope ?? '').split(' ').filter(Boolean), introspect: row.introspect },
        errors: {},
        ...extra,
      },
      status,
    );
  };
  r.get(...org('/oauth-apps/:clientId/edit', { admin: true }), async (ctx) => editAppPage(ctx));
  r.post(...org('/oauth-apps/:clientId/edit', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    const values = { name: str(b.name), redirect_uris: str(b.redirect_uris), scopes: list(b.scopes), introspect: str(b.introspect) === 'on' };
    try {
      const row = await s.clients.getForOrg(o.orgId, ctx.params.clientId);
      const isCode = ((row.metadata as Record<string, any>).grant_types ?? []).includes('authorization_code');
      const input = parse(clientUpdateInput, {
        client_name: values.name,
        ...(isCode && { redirect_uris: values.redirect_uris.split(/\r?\n/).map((u) => u.trim()).filter(Boolean) }),
        scope: values.scopes.join(' '),
        introspection: values.introspect,
      });
      await s.clients.update(o.caller.actor, o.orgId, ctx.params.clientId, input);
      ctx.redirect(`${o.base}/oauth-apps`);
    } catch (err) {
      const f = formError(err, APP_FIELDS);
      await editAppPage(ctx, { values, errors: f.errors }, f.status);
    }
  });

  r.get(...org('/oauth-apps/:clientId/rotate', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const row = await s.clients.getForOrg(o.orgId, ctx.params.clientId);
    p.page(ctx, o, 'confirm', {
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
    p.page(ctx, o, 'secret-once', {
      title: 'New client secret',
      nav: 'oauth-apps',
      heading: `New client secret for “${client.client_name}”`,
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
    p.page(ctx, o, 'confirm', {
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
}
