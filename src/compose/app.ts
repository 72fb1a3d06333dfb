import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Koa, { type Context, type Next } from 'koa';
import Router from '@koa/router';
import mount from 'koa-mount';
import compose from 'koa-compose';
import type { Services } from './services.js';
import { jsonErrors, AppError } from '../http/errors.js';
import { logRequest } from '../http/logger.js';
import { securityHeaders } from '../http/security-headers.js';
import { refuseUnsafeInput, refuseUnsafeProviderForms } from '../http/unsafe-input.js';
import { interactionRoutes } from '../oauth/interactions/routes.js';
import { rateLimitDecorator } from '../ratelimit/index.js';
import { managementHeaders } from '../api/management-limit.js';
import { loginGuard } from '../auth/login-guard.js';
import { limitTokenRequest } from '../endpoints/token-limit.js';
import { introspectionEndpoint } from '../endpoints/introspection.js';
import { revocationEndpoint } from '../endpoints/revocation.js';
import { tokenEndpoint } from '../endpoints/token.js';
import { rateLimitCheckEndpoint } from '../endpoints/ratelimit-check.js';
import { activeSigningKey } from '../oauth/signing-keys.js';
import { dashboardRoutes } from '../dashboard/routes.js';
import { apiRouters } from '../api/index.js';

const staticDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../static');
const css = readFileSync(path.join(staticDir, 'app.css'));
const dashboardJs = readFileSync(path.join(staticDir, 'dashboard.js'));

export interface FlowgateApp {
  koa: Koa;
  /** The server's request handler: the introspection hot path on the bare request, Koa for the rest. */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
}

/** Composes the Koa app: middleware order, feature routers, then the mounted provider. */
export function buildApp(s: Services): FlowgateApp {
  const app = new Koa();
  app.proxy = s.config.trustProxy;
  app.keys = s.config.cookieSecrets; // koa-mount runs oidc-provider on this app's ctx.cookies: it signs with these keys
  app.silent = true;
  app.on('error', (err, ctx?: Context) => s.logger.error({ err, reqId: ctx?.state?.reqId }, 'unhandled error'));

  app.use(requestLog(s));
  const browserPaths = [s.provider.pathFor('authorization'), s.provider.pathFor('end_session')];
  app.use(refuseUnsafeInput(s.render, browserPaths));
  // The endpoints served in front of the provider come first: plain middleware, no router.
  const { issuer } = s.config;
  const introspection = introspectionEndpoint({
    issuer,
    resolver: s.credentials,
    clientAuth: s.clientAuth,
    rateLimit: rateLimitDecorator(s.rateLimits),
    responseSigningKey: activeSigningKey(s.signingKeys, 'RS256'),
    logger: s.logger,
    trustProxy: s.config.trustProxy,
  });
  app.use(
    revocationEndpoint({
      issuer,
      apiAudience: s.config.apiAudience,
      clientAuth: s.clientAuth,
      ownJwts: s.ownJwts,
      clients: s.clientDirectory,
      clientKeys: s.clientKeys,
      kv: s.kv,
      invalidation: s.invalidation,
    }),
  );
  app.use(
    tokenEndpoint({
      issuer,
      clientAuth: s.clientAuth,
      clients: s.clientDirectory,
      exchange: s.exchange,
      limit: (ctx, params) => limitTokenRequest(ctx, s.tokenLimit, params),
    }),
  );
  app.use(rateLimitCheckEndpoint({ issuer, clientAuth: s.clientAuth, limits: s.rateLimits }));
  app.use(securityHeaders);

  const router = new Router();
  // /healthz, /readyz and /metrics are answered by the server before the app (src/server.ts).
  router.get('/static/dashboard.js', (ctx) => {
    ctx.type = 'text/javascript';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = dashboardJs;
  });
  router.get('/static/app.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = css;
  });

  const interactions = interactionRoutes({
    provider: s.provider,
    accounts: s.accounts,
    consents: s.consents,
    render: s.render,
    csrfSecret: s.config.cookieSecrets[0],
    loginGuard: loginGuard(s.rateLimits),
  });

  // Flowgate's own pages and JSON APIs. Provider paths (/auth, /token, /jwks, ...) skip this whole
  // stack: a dozen routers matching every token request cost more than the request itself.
  const ours = compose([
    // Flowgate's JSON endpoints answer in the one error shape; the provider's in RFC 6749's.
    async (ctx: Context, next: Next) => (isJsonApiPath(ctx.path) ? jsonErrors(ctx, next) : next()),
    htmlErrors(s),
    router.routes(),
    router.allowedMethods(),
    interactions.routes(),
    async (ctx: Context, next: Next) => (ctx.path.startsWith('/api/') ? managementHeaders(ctx, next) : next()),
    ...featureRouters(s).flatMap((feature) => [feature.routes(), feature.allowedMethods()]),
    async (ctx: Context, next: Next) => {
      if (ctx.path.startsWith('/api/')) throw new AppError(404, 'NOT_FOUND', `No route for ${ctx.method} ${ctx.path}`);
      await next();
    },
  ] as Koa.Middleware[]);
  app.use((ctx, next) => (isOurPath(ctx.path) ? ours(ctx, next) : next()));

  // RFC 8414 metadata: the same document oidc-provider serves for OpenID discovery.
  app.use(async (ctx, next) => {
    if (ctx.path === '/.well-known/oauth-authorization-server') ctx.path = '/.well-known/openid-configuration';
    await next();
  });
  app.use(refuseUnsafeProviderForms(s.render, browserPaths));
  app.use(mount(s.provider as unknown as Koa));
  const koa = app.callback();
  return {
    koa: app,
    handle: (req, res) => {
      if (!introspection(req, res)) void koa(req, res);
    },
  };
}

const OUR_PREFIXES = ['/api/', '/dashboard', '/interaction/', '/static/', '/docs/api'];
const OUR_PATHS = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json']);

function isOurPath(p: string): boolean {
  return OUR_PATHS.has(p) || OUR_PREFIXES.some((prefix) => p.startsWith(prefix));
}

function isJsonApiPath(p: string): boolean {
  return p.startsWith('/api/') || p === '/healthz' || p === '/readyz' || p === '/openapi.json';
}

/** Feature routers mounted before the provider. Each feature adds its own here. */
function featureRouters(s: Services): Router[] {
  const dashboard = dashboardRoutes(s, { sessions: s.dashboardSessions, invitations: s.invitations, consents: s.consents, loginGuard: loginGuard(s.rateLimits) });
  return [
    dashboard,
    // The JSON API (/api/v1), /openapi.json and /docs/api.
    ...apiRouters(s),
  ];
}

function htmlErrors(s: Services) {
  return async (ctx: Context, next: Next) => {
    if (!ctx.path.startsWith('/interaction/')) return next();
    try {
      await next();
    } catch (err) {
      const e = err as { status?: number; name?: string; message?: string; error_description?: string };
      if (!(err instanceof AppError) && !(e.status && e.status < 500)) s.logger.error({ err }, 'interaction failed');
      ctx.status = err instanceof AppError ? err.status : e.status && e.status < 500 ? e.status : 500;
      ctx.type = 'html';
      const description =
        e.name === 'SessionNotFound'
          ? 'Your sign-in session was not found or has expired. Go back to the application and start again.'
          : err instanceof AppError
            ? err.message
            : e.error_description ?? 'Please go back to the application and try again.';
      ctx.body = s.render('error', { title: 'Something went wrong', error: err instanceof AppError ? err.code : e.name ?? 'error', description });
    }
  };
}

function requestLog(s: Services) {
  return async (ctx: Context, next: Next) => {
    const reqId = (typeof ctx.get('x-request-id') === 'string' && /^[\w-]{1,64}$/.test(ctx.get('x-request-id')) ? ctx.get('x-request-id') : '') || randomUUID();
    ctx.state.reqId = reqId;
    ctx.set('X-Request-Id', reqId);
    const start = performance.now();
    try {
      await next();
    } finally {
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      if (ctx.path !== '/healthz' && s.logger.isLevelEnabled('info')) logRequest(s.logger, start, { reqId, method: ctx.method, url: ctx.originalUrl, status, ip: ctx.ip });
    }
  };
}
