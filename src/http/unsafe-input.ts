import type { Context, Next } from 'koa';
import { errorReply, oauthErrors, sendKoa } from './oauth-error.js';
import { AppError, sendError } from './errors.js';
import { readRawBody } from './raw-body.js';
import type { Renderer } from './render.js';
import { findUnsafeText, isUnsafeText } from './unsafe-text.js';

/**
 * The edge's refusal of text no field accepts (./unsafe-text.ts), in each surface's documented shape:
 * - Flowgate's JSON API (`/api/`, `/healthz`, `/readyz`): `{"success": false, "error": {...}}`;
 * - pages (`/dashboard`, `/interaction/`) and the provider's browser endpoints (authorization, end
 *   session): the error page;
 * - every other endpoint is an OAuth one: RFC 6749 §5.2 `invalid_request`.
 * Query strings and path segments are checked here for every request; JSON bodies in `jsonBody`, page
 * forms in `formBody` (./body.ts), and form bodies bound for oidc-provider in `refuseUnsafeProviderForms`.
 */
export type Surface = 'json' | 'page' | 'oauth';

const PAGE_PREFIXES = ['/dashboard', '/interaction/'];

export function surfaceOf(path: string, browserPaths: ReadonlySet<string>): Surface {
  if (path.startsWith('/api/') || path === '/healthz' || path === '/readyz') return 'json';
  if (PAGE_PREFIXES.some((p) => path.startsWith(p)) || browserPaths.has(path)) return 'page';
  return 'oauth';
}

const MESSAGE = 'contains a NUL character or an unpaired UTF-16 surrogate, which no field accepts';

/** `field` for messages: the unsafe characters themselves are never echoed. */
function printable(field: string): string {
  return field.replace(/\u0000|[\uD800-\uDFFF]/g, '\uFFFD').slice(0, 100);
}

/** The AppError for JSON and page surfaces (VALIDATION_ERROR, naming the field). */
export function unsafeTextError(field: string): AppError {
  const path = printable(field);
  return new AppError(400, 'VALIDATION_ERROR', `${path}: ${MESSAGE}`, { issues: [{ path, message: MESSAGE }] });
}

function refuse(ctx: Context, surface: Surface, field: string, render: Renderer): void {
  const err = unsafeTextError(field);
  if (surface === 'json') return sendError(ctx, err);
  if (surface === 'page') {
    ctx.status = 400;
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'html';
    ctx.body = render('error', { title: 'Something went wrong', error: 'invalid_request', description: err.message });
    return;
  }
  sendKoa(ctx, errorReply(oauthErrors.invalidRequest(`${printable(field)} ${MESSAGE}`)));
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // the router keeps an undecodable segment as it is
  }
}

/**
 * Koa middleware, early in the stack: refuses a request whose query string (names and values, as
 * Koa parses them) or path segments (decoded, as the router hands them to routes) hold unsafe text.
 * `browserPaths`: the provider's endpoints that answer browsers with pages (authorization, end session).
 */
export function refuseUnsafeInput(render: Renderer, browserPaths: readonly string[]) {
  const browser = new Set(browserPaths);
  return async (ctx: Context, next: Next) => {
    const bad = unsafeInUrl(ctx);
    if (bad !== undefined) return refuse(ctx, surfaceOf(ctx.path, browser), bad, render);
    await next();
  };
}

function unsafeInUrl(ctx: Context): string | undefined {
  const segments = ctx.path.split('/');
  for (let i = 0; i < segments.length; i++) if (isUnsafeText(decodeSegment(segments[i]))) return `path segment ${i}`;
  if (ctx.querystring === '') return undefined;
  const bad = findUnsafeText(ctx.query);
  return bad === undefined ? undefined : `query.${bad}`;
}

/** oidc-provider's own body limit (lib/shared/selective_body.js). */
const PROVIDER_BODY_LIMIT = 56 * 1024;

/**
 * Koa middleware, just before the provider is mounted: form bodies bound for oidc-provider's own
 * endpoints (token grants it serves, revocation of opaque tokens, pushed authorization requests, end
 * session, userinfo) are read once, checked, and handed on in `req.body`, where the provider reads a
 * consumed body. A body an earlier reader already consumed (token preprocessing) is checked as it is.
 */
export function refuseUnsafeProviderForms(render: Renderer, browserPaths: readonly string[]) {
  const browser = new Set(browserPaths);
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' || !ctx.is('application/x-www-form-urlencoded')) return next();
    const req = ctx.req as typeof ctx.req & { body?: unknown };
    let raw = typeof req.body === 'string' ? req.body : undefined;
    if (raw === undefined && req.readable) {
      try {
        raw = (await readRawBody(req, PROVIDER_BODY_LIMIT)).toString('utf8');
      } catch (err) {
        if (!(err instanceof AppError && err.status === 413)) throw err;
        sendKoa(ctx, errorReply(oauthErrors.tooLarge()));
        return;
      }
      req.body = raw;
    }
    if (raw !== undefined) {
      for (const [name, value] of new URLSearchParams(raw)) {
        if (isUnsafeText(name)) return refuse(ctx, surfaceOf(ctx.path, browser), 'body parameter name', render);
        if (isUnsafeText(value)) return refuse(ctx, surfaceOf(ctx.path, browser), name, render);
      }
    }
    await next();
  };
}
