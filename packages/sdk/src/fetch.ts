/**
 * Fetch API adapter: `Request` in, `Response` out. Covers Hono (`c.req.raw`), Next.js route handlers,
 * Bun.serve, Deno.serve, Cloudflare-style handlers on Node-compatible runtimes, and plain Node with a
 * small bridge.
 */
import { Flowgate, organizationError, scopeError, workflowError, type FlowgateIdentity, type FlowgateOptions } from './core.js';
import { FlowgateError, flowgateErrors } from './errors.js';
import { RateLimitChecker, type RateLimitCheckOptions } from './ratelimit.js';
import { webhookVerifier, type VerifiedWebhook, type WebhookReceiverOptions } from './webhooks.js';

export interface FetchFlowgateOptions extends Omit<FlowgateOptions, 'rateLimit'> {
  /**
   * Rate limits decided by Flowgate (see FlowgateOptions.rateLimit). `category(request)` overrides
   * the method-and-route mapping; `ip(request)` names the end client (the Fetch API does not know
   * the peer: read it from your platform, e.g. a trusted proxy's header).
   */
  rateLimit?: boolean | { category?: (request: Request) => string | undefined; ip?: (request: Request) => string | undefined };
}

export interface ProtectOptions<A extends unknown[]> {
  /** Every scope the caller must hold (403 INSUFFICIENT_PERMISSIONS naming the first missing). */
  scopes?: string[];
  /** The workflow the request targets: a credential restricted to another one gets 403 WORKFLOW_ACCESS_DENIED. */
  workflowId?: (request: Request, ...rest: A) => string | undefined | Promise<string | undefined>;
  /** The route pattern for rate limiting (`/api/v1/workflows/:id/run`); default the URL's path. */
  route?: string;
}

export type Authenticated = { identity: FlowgateIdentity; headers: Record<string, string> };

/** A FlowgateError as a JSON Response. */
export function errorResponse(err: FlowgateError): Response {
  return Response.json(err.body(), { status: err.status, headers: err.headers });
}

/** The Response with extra headers (a Response from fetch() has immutable headers: copy it). */
function withHeaders(res: Response, extra: Record<string, string>): Response {
  if (Object.keys(extra).length === 0) return res;
  const headers = new Headers(res.headers);
  for (const [name, value] of Object.entries(extra)) if (!headers.has(name)) headers.set(name, value);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/** Runs a handler, answering a FlowgateError it throws (checkOrganization, your own) as a Response. */
async function answering(run: () => Response | Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof FlowgateError) return errorResponse(err);
    throw err;
  }
}

/** Throws 403 ORGANIZATION_ACCESS_DENIED unless the credential acts for this organization. */
export function checkOrganization(identity: FlowgateIdentity, orgId: string): void {
  const err = organizationError(identity, orgId);
  if (err) throw err;
}

/** Throws 403 WORKFLOW_ACCESS_DENIED when the credential is restricted to another workflow. */
export function checkWorkflowAccess(identity: FlowgateIdentity, workflowId: string): void {
  const err = workflowError(identity, workflowId);
  if (err) throw err;
}

/** Throws 403 INSUFFICIENT_PERMISSIONS unless the caller holds every scope named. */
export function checkScopes(identity: FlowgateIdentity, ...scopes: string[]): void {
  const err = scopeError(identity, scopes);
  if (err) throw err;
}

export function flowgateFetch(o: FetchFlowgateOptions) {
  const rl = o.rateLimit ? (o.rateLimit === true ? {} : o.rateLimit) : undefined;
  const flowgate = new Flowgate({ ...o, rateLimit: !!rl });

  /** The caller's identity and the headers to add to your response, or the error Response to return. */
  async function authenticate(request: Request, opts: { route?: string } = {}): Promise<Authenticated | Response> {
    const url = new URL(request.url);
    const keys = url.searchParams.getAll('api-key');
    // Headers.get joins repeated headers with ", "; keys never contain a comma, so a comma means several.
    const xApiKey = request.headers.get('x-api-key') ?? undefined;
    const outcome = await flowgate.authenticate({
      headers: { authorization: request.headers.get('authorization') ?? undefined, 'x-api-key': xApiKey?.includes(',') ? xApiKey.split(/,\s*/) : xApiKey },
      query: { 'api-key': keys.length === 0 ? undefined : keys.length === 1 ? keys[0] : keys },
      method: request.method,
      route: opts.route ?? url.pathname,
      ip: rl?.ip?.(request),
      category: rl?.category?.(request),
    });
    return outcome.ok ? { identity: outcome.identity, headers: outcome.headers } : errorResponse(outcome.error);
  }

  /**
   * Wraps a handler: authenticates, checks scopes and workflow, calls it with the identity, adds the
   * rate-limit headers to its Response, and answers a FlowgateError it throws.
   * `export const POST = flowgate.protect({ scopes: ['workflows:execute'] }, async (request, identity) => ...)`
   */
  function protect<A extends unknown[]>(
    opts: ProtectOptions<A>,
    handler: (request: Request, identity: FlowgateIdentity, ...rest: A) => Response | Promise<Response>,
  ): (request: Request, ...rest: A) => Promise<Response> {
    return async (request, ...rest) => {
      const auth = await authenticate(request, { route: opts.route });
      if (auth instanceof Response) return auth;
      const res = await answering(async () => {
        if (opts.scopes) checkScopes(auth.identity, ...opts.scopes);
        const wf = opts.workflowId ? await opts.workflowId(request, ...rest) : undefined;
        if (wf !== undefined) checkWorkflowAccess(auth.identity, wf);
        return handler(request, auth.identity, ...rest);
      });
      return withHeaders(res, auth.headers);
    };
  }

  return { flowgate, authenticate, protect };
}

export interface FetchIpRateLimitOptions extends RateLimitCheckOptions {
  /** Whose budget a request spends (the client IP, from your platform). */
  key: (request: Request) => string;
}

/** Per-IP rate limit through Flowgate: the headers to add, or the error Response to return. */
export function ipRateLimit(o: FetchIpRateLimitOptions): (request: Request) => Promise<{ headers: Record<string, string> } | Response> {
  const checker = new RateLimitChecker(o);
  return async (request) => {
    const outcome = await checker.check(o.key(request));
    return outcome.ok ? { headers: outcome.headers } : errorResponse(outcome.error);
  };
}

/**
 * Wraps an inbound webhook handler: verifies signature and timestamp over the raw body, refuses a
 * replayed `webhook-id`, then calls `handler` with the event.
 */
export function webhookHandler(
  opts: WebhookReceiverOptions,
  handler: (event: VerifiedWebhook, request: Request) => Response | Promise<Response>,
): (request: Request) => Promise<Response> {
  const verify = webhookVerifier(opts);
  const max = opts.maxBodyBytes ?? 1024 * 1024;
  return (request) =>
    answering(async () => {
      if (Number(request.headers.get('content-length') ?? 0) > max) throw flowgateErrors.tooLarge(max);
      const raw = await readBounded(request, max);
      return handler(await verify(request.headers, raw), request);
    });
}

/** The body, refused (413) as soon as it passes `max` bytes rather than after buffering it all. */
async function readBounded(request: Request, max: number): Promise<Buffer> {
  if (!request.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw flowgateErrors.tooLarge(max);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

export { Flowgate, FlowgateError };
export type { FlowgateIdentity, FlowgateOptions, VerifiedWebhook, WebhookReceiverOptions };
