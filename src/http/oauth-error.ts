import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';

/**
 * The one OAuth error of the endpoints Flowgate serves in front of the provider (RFC 6749 §5.2,
 * RFC 7009 §2.2.1, RFC 7662 §2.3, RFC 8693 §2.2.2), and the one way they answer.
 */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

export const oauthErrors = {
  invalidRequest: (description: string) => new OAuthError(400, 'invalid_request', description),
  /** RFC 6749 §5.2: a 401 invalid_client carries a challenge for the scheme the client may use. */
  invalidClient: (description: string) => new OAuthError(401, 'invalid_client', description, { 'WWW-Authenticate': 'Basic realm="flowgate"' }),
  invalidGrant: (description: string) => new OAuthError(400, 'invalid_grant', description),
  invalidScope: (description: string) => new OAuthError(400, 'invalid_scope', description),
  invalidTarget: (description: string) => new OAuthError(400, 'invalid_target', description),
  unauthorizedClient: (description: string) => new OAuthError(400, 'unauthorized_client', description),
  tooLarge: () => new OAuthError(413, 'invalid_request', 'request body too large'),
  methodNotAllowed: () => new OAuthError(405, 'invalid_request', 'use POST', { Allow: 'POST' }),
};

/** An answer as plain data: status, headers and the JSON (or compact JWT) body. */
export interface OAuthReply {
  status: number;
  body: Record<string, unknown> | string;
  headers?: Record<string, string>;
  /** Defaults to application/json. */
  contentType?: string;
}

export function errorReply(err: OAuthError): OAuthReply {
  return { status: err.status, body: { error: err.error, error_description: err.description }, headers: err.headers };
}

/** RFC 6749 §5.1: responses carrying tokens or facts about them are never cached. */
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export function sendKoa(ctx: Context, r: OAuthReply): void {
  ctx.status = r.status;
  ctx.set({ ...NO_STORE, ...r.headers });
  if (r.contentType) ctx.type = r.contentType;
  ctx.body = r.body;
}

/** For the handlers that run on the bare Node request (introspection). */
export function sendNode(res: ServerResponse, r: OAuthReply, extraHeaders: Record<string, string>): void {
  const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
  res.writeHead(r.status, {
    'Content-Type': r.contentType ?? 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...NO_STORE,
    'X-Content-Type-Options': 'nosniff',
    ...extraHeaders,
    ...r.headers,
  });
  res.end(text);
}

/** Koa middleware body for an endpoint: its OAuthErrors are answered in RFC 6749's form. */
export async function answeringOAuthErrors(ctx: Context, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    sendKoa(ctx, errorReply(err));
  }
}
