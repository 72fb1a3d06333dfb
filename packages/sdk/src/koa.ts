/**
 * Koa adapter: `flowgateAuth` puts the caller on `ctx.state.flowgate`; failures answer in Flowgate's
 * JSON error shape.
 */
import type { Context, Middleware, Next } from 'koa';
import { Flowgate, organizationError, scopeError, workflowError, type FlowgateIdentity, type FlowgateOptions } from './core.js';
import { FlowgateError } from './errors.js';
import { RateLimitChecker, type RateLimitCheckOptions } from './ratelimit.js';
import { readNodeBody, webhookVerifier, type VerifiedWebhook, type WebhookReceiverOptions } from './webhooks.js';

declare module 'koa' {
  interface DefaultState {
    flowgate?: FlowgateIdentity;
    webhook?: VerifiedWebhook;
    /** The exact bytes that were verified (for your own checks or logging). */
    webhookRawBody?: Buffer;
  }
}

export interface KoaFlowgateOptions extends Omit<FlowgateOptions, 'rateLimit'> {
  /**
   * Rate limits decided by Flowgate (see FlowgateOptions.rateLimit). `category(ctx)` overrides the
   * method-and-route mapping; `ip(ctx)` names the end client (default `ctx.ip`: set `app.proxy`
   * behind a proxy).
   */
  rateLimit?: boolean | { category?: (ctx: Context) => string | undefined; ip?: (ctx: Context) => string | undefined };
}

export function sendError(ctx: Context, err: FlowgateError): void {
  ctx.status = err.status;
  if (err.headers) ctx.set(err.headers);
  ctx.body = err.body();
}

/**
 * Authenticates every request with Flowgate and puts the identity on `ctx.state.flowgate`. A
 * FlowgateError thrown further down (checkOrganization, checkWorkflowAccess, your own) is answered
 * in the same shape.
 */
export function flowgateAuth(o: KoaFlowgateOptions): Middleware & { flowgate: Flowgate } {
  const rl = o.rateLimit ? (o.rateLimit === true ? {} : o.rateLimit) : undefined;
  const flowgate = new Flowgate({ ...o, rateLimit: !!rl });
  const middleware = async (ctx: Context, next: Next) => {
    // @koa/router sets _matchedRoute to the pattern (/api/v1/workflows/:id/run) once it has matched.
    const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
    const outcome = await flowgate.authenticate({
      headers: ctx.headers,
      query: ctx.query,
      method: ctx.method,
      route: typeof matched === 'string' ? matched : ctx.path,
      ip: rl ? (rl.ip ? rl.ip(ctx) : ctx.ip) : undefined,
      category: rl?.category?.(ctx),
    });
    if (!outcome.ok) return sendError(ctx, outcome.error);
    ctx.state.flowgate = outcome.identity;
    ctx.set(outcome.headers);
    try {
      await next();
    } catch (err) {
      if (err instanceof FlowgateError) return sendError(ctx, err);
      throw err;
    }
  };
  return Object.assign(middleware, { flowgate });
}

function identityOf(ctx: Context): FlowgateIdentity {
  const id = ctx.state.flowgate;
  if (!id) throw new Error('flowgateAuth() must run before this middleware');
  return id;
}

/** 403 INSUFFICIENT_PERMISSIONS unless the caller holds every scope named. */
export function requireScope(...scopes: string[]): Middleware {
  return async (ctx, next) => {
    const err = scopeError(identityOf(ctx), scopes);
    if (err) return sendError(ctx, err);
    await next();
  };
}

/**
 * A credential restricted to one workflow may act only on that workflow ("API key is not authorized
 * for this workflow"). Throws a FlowgateError; call with the workflow the request targets.
 */
export function checkWorkflowAccess(ctx: Context, workflowId: string): void {
  const err = workflowError(identityOf(ctx), workflowId);
  if (err) throw err;
}

/** Middleware form: the workflow id comes from the request (e.g. a route parameter). */
export function requireWorkflowAccess(getWorkflowId: (ctx: Context) => string | undefined): Middleware {
  return async (ctx, next) => {
    const wf = getWorkflowId(ctx);
    const err = wf === undefined ? undefined : workflowError(identityOf(ctx), wf);
    if (err) return sendError(ctx, err);
    await next();
  };
}

/** Resources belong to one organization; a credential of another organization is refused (throws). */
export function checkOrganization(ctx: Context, orgId: string): void {
  const err = organizationError(identityOf(ctx), orgId);
  if (err) throw err;
}

export interface KoaIpRateLimitOptions extends RateLimitCheckOptions {
  /** Whose budget a request spends; default the client IP (`ctx.ip`: set `app.proxy` behind a proxy). */
  key?: (ctx: Context) => string;
}

/** Per-IP rate limits through Flowgate for requests without a credential (inbound webhooks). */
export function ipRateLimit(o: KoaIpRateLimitOptions): Middleware {
  const checker = new RateLimitChecker(o);
  return async (ctx, next) => {
    const outcome = await checker.check(o.key ? o.key(ctx) : ctx.ip);
    if (!outcome.ok) return sendError(ctx, outcome.error);
    ctx.set(outcome.headers);
    await next();
  };
}

/**
 * For an inbound webhook route: reads the raw body (it must run before any body parser), verifies
 * signature and timestamp, refuses a replayed `webhook-id`, and puts the event on
 * `ctx.state.webhook` (the raw bytes on `ctx.state.webhookRawBody`).
 */
export function webhookReceiver(opts: WebhookReceiverOptions): Middleware {
  const verify = webhookVerifier(opts);
  const max = opts.maxBodyBytes ?? 1024 * 1024;
  return async (ctx, next) => {
    let event: VerifiedWebhook;
    let raw: Buffer;
    try {
      raw = await readNodeBody(ctx.req, max);
      event = await verify(ctx.headers, raw);
    } catch (err) {
      if (err instanceof FlowgateError) {
        if (err.status === 413) ctx.set('Connection', 'close');
        return sendError(ctx, err);
      }
      throw err;
    }
    ctx.state.webhook = event;
    ctx.state.webhookRawBody = raw;
    await next();
  };
}

export { Flowgate, FlowgateError };
export type { FlowgateIdentity, FlowgateOptions, VerifiedWebhook, WebhookReceiverOptions };
