/**
 * Express adapter (Express 4 and 5; any Connect-style framework on Node's http): `flowgateAuth`
 * puts the caller on `req.flowgate`; `errorHandler()` answers a thrown FlowgateError in Flowgate's
 * JSON error shape. Typed structurally on Node's request and response, so it needs no Express types.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Flowgate, organizationError, scopeError, workflowError, type FlowgateIdentity, type FlowgateOptions } from './core.js';
import { FlowgateError } from './errors.js';
import { RateLimitChecker, type RateLimitCheckOptions } from './ratelimit.js';
import { readNodeBody, webhookVerifier, type VerifiedWebhook, type WebhookReceiverOptions } from './webhooks.js';

declare global {
  // Express's own Request type picks these up when @types/express is installed.
  namespace Express {
    interface Request {
      flowgate?: FlowgateIdentity;
      webhook?: VerifiedWebhook;
      webhookRawBody?: Buffer;
    }
  }
}

/** What the adapter reads and writes of Express's request. */
export interface FlowgateRequest extends IncomingMessage {
  originalUrl?: string;
  path?: string;
  ip?: string;
  /** Express: the matched route (inside a route handler). */
  route?: { path?: unknown };
  baseUrl?: string;
  body?: unknown;
  flowgate?: FlowgateIdentity;
  webhook?: VerifiedWebhook;
  webhookRawBody?: Buffer;
}
export type NextFunction = (err?: unknown) => void;
export type Handler = (req: FlowgateRequest, res: ServerResponse, next: NextFunction) => void | Promise<void>;

export interface ExpressFlowgateOptions extends Omit<FlowgateOptions, 'rateLimit'> {
  /**
   * Rate limits decided by Flowgate (see FlowgateOptions.rateLimit). `category(req)` overrides the
   * method-and-route mapping; `ip(req)` names the end client (default `req.ip`: set Express's
   * `trust proxy` behind a proxy).
   */
  rateLimit?: boolean | { category?: (req: FlowgateRequest) => string | undefined; ip?: (req: FlowgateRequest) => string | undefined };
}

export function sendError(res: ServerResponse, err: FlowgateError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = err.status;
  for (const [name, value] of Object.entries(err.headers ?? {})) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(err.body()));
}

function pathOf(req: FlowgateRequest): string {
  return req.path ?? new URL(req.url ?? '/', 'http://x').pathname;
}

/** The `api-key` query parameter, read from the URL itself whatever query parser the app set up. */
function queryOf(req: FlowgateRequest): Record<string, string | string[] | undefined> {
  const params = new URL(req.originalUrl ?? req.url ?? '/', 'http://x').searchParams.getAll('api-key');
  return { 'api-key': params.length === 0 ? undefined : params.length === 1 ? params[0] : params };
}

/** Authenticates every request with Flowgate and puts the identity on `req.flowgate`. */
export function flowgateAuth(o: ExpressFlowgateOptions): Handler & { flowgate: Flowgate } {
  const rl = o.rateLimit ? (o.rateLimit === true ? {} : o.rateLimit) : undefined;
  const flowgate = new Flowgate({ ...o, rateLimit: !!rl });
  const handler: Handler = (req, res, next) => {
    const route = typeof req.route?.path === 'string' ? `${req.baseUrl ?? ''}${req.route.path}` : pathOf(req);
    flowgate
      .authenticate({
        headers: req.headers,
        query: queryOf(req),
        method: req.method ?? 'GET',
        route,
        ip: rl ? (rl.ip ? rl.ip(req) : (req.ip ?? req.socket.remoteAddress)) : undefined,
        category: rl?.category?.(req),
      })
      .then((outcome) => {
        if (!outcome.ok) return sendError(res, outcome.error);
        req.flowgate = outcome.identity;
        for (const [name, value] of Object.entries(outcome.headers)) res.setHeader(name, value);
        next();
      }, next);
  };
  return Object.assign(handler, { flowgate });
}

function identityOf(req: FlowgateRequest): FlowgateIdentity {
  if (!req.flowgate) throw new Error('flowgateAuth() must run before this middleware');
  return req.flowgate;
}

/** 403 INSUFFICIENT_PERMISSIONS unless the caller holds every scope named. */
export function requireScope(...scopes: string[]): Handler {
  return (req, res, next) => {
    const err = scopeError(identityOf(req), scopes);
    if (err) return sendError(res, err);
    next();
  };
}

/** 403 WORKFLOW_ACCESS_DENIED when the credential is restricted to another workflow (throws). */
export function checkWorkflowAccess(req: FlowgateRequest, workflowId: string): void {
  const err = workflowError(identityOf(req), workflowId);
  if (err) throw err;
}

/** Middleware form: the workflow id comes from the request (e.g. `(req) => req.params.id`). */
export function requireWorkflowAccess<R extends FlowgateRequest = FlowgateRequest>(getWorkflowId: (req: R) => string | undefined): Handler {
  return (req, res, next) => {
    const wf = getWorkflowId(req as R);
    const err = wf === undefined ? undefined : workflowError(identityOf(req), wf);
    if (err) return sendError(res, err);
    next();
  };
}

/** 403 ORGANIZATION_ACCESS_DENIED unless the credential acts for this organization (throws). */
export function checkOrganization(req: FlowgateRequest, orgId: string): void {
  const err = organizationError(identityOf(req), orgId);
  if (err) throw err;
}

/**
 * Express error middleware (register it last): answers a FlowgateError in Flowgate's JSON shape and
 * passes anything else on.
 */
export function errorHandler() {
  return (err: unknown, _req: FlowgateRequest, res: ServerResponse, next: NextFunction): void => {
    if (err instanceof FlowgateError) return sendError(res, err);
    next(err);
  };
}

export interface ExpressIpRateLimitOptions extends RateLimitCheckOptions {
  /** Whose budget a request spends; default the client IP (`req.ip`). */
  key?: (req: FlowgateRequest) => string;
}

/** Per-IP rate limits through Flowgate for requests without a credential (inbound webhooks). */
export function ipRateLimit(o: ExpressIpRateLimitOptions): Handler {
  const checker = new RateLimitChecker(o);
  return (req, res, next) => {
    checker.check(o.key ? o.key(req) : (req.ip ?? req.socket.remoteAddress ?? '')).then((outcome) => {
      if (!outcome.ok) return sendError(res, outcome.error);
      for (const [name, value] of Object.entries(outcome.headers)) res.setHeader(name, value);
      next();
    }, next);
  };
}

/**
 * For an inbound webhook route: verifies signature and timestamp over the raw body, refuses a
 * replayed `webhook-id`, and puts the event on `req.webhook`. Mount it before any JSON body parser,
 * or after `express.raw({ type: '*\/*' })` (a Buffer in `req.body` is used as is).
 */
export function webhookReceiver(opts: WebhookReceiverOptions): Handler {
  const verify = webhookVerifier(opts);
  const max = opts.maxBodyBytes ?? 1024 * 1024;
  return (req, res, next) => {
    (async () => {
      const raw = Buffer.isBuffer(req.body) ? req.body : await readNodeBody(req, max);
      req.webhook = await verify(req.headers, raw);
      req.webhookRawBody = raw;
    })().then(
      () => next(),
      (err) => {
        if (!(err instanceof FlowgateError)) return next(err);
        if (err.status === 413) res.setHeader('Connection', 'close');
        sendError(res, err);
      },
    );
  };
}

export { Flowgate, FlowgateError };
export type { FlowgateIdentity, FlowgateOptions, VerifiedWebhook, WebhookReceiverOptions };
