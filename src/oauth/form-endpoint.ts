import type { Context } from 'koa';
import { AppError } from '../http/errors.js';
import { readRawBody } from '../http/raw-body.js';

/**
 * Reading and answering for the form-encoded endpoints Flowgate serves itself in front of
 * oidc-provider (token-endpoint preprocessing, introspection, JWT revocation), in RFC 6749's form.
 */

/** RFC 6749 §5.1: responses carrying tokens or token facts are never cached. */
export function sendOAuth(ctx: Context, status: number, body: Record<string, unknown> | string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.body = body;
}

/** RFC 6749 §5.2 error; a 401 (invalid_client) MUST carry a WWW-Authenticate challenge. */
export function sendOAuthError(ctx: Context, status: number, error: string, description: string): void {
  if (status === 401) ctx.set('WWW-Authenticate', 'Basic realm="flowgate"');
  sendOAuth(ctx, status, { error, error_description: description });
}

/** The raw form body, or undefined after answering 413 when it exceeds `limit` bytes. */
export async function readForm(ctx: Context, limit: number): Promise<string | undefined> {
  try {
    return (await readRawBody(ctx.req, limit)).toString('utf8');
  } catch (err) {
    if (!(err instanceof AppError && err.status === 413)) throw err;
    sendOAuthError(ctx, 413, 'invalid_request', 'request body too large');
    return undefined;
  }
}
