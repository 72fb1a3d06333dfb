import type { Context, Next } from 'koa';
import { readForm, sendOAuth, sendOAuthError } from '../oauth/form-endpoint.js';
import { authenticateCaller, CallerAuthError, type CallerAuthDeps } from './client-auth.js';
import type { Introspector } from './introspector.js';
import type { Answer, Caller } from './types.js';

/** Hook for the rate-limit issue: decorates an active answer with the credential's limit state. */
export type AnswerDecorator = (answer: Answer, params: URLSearchParams, caller: Caller) => Promise<Answer>;

/**
 * POST <introspection_endpoint> (RFC 7662), served by Flowgate itself in front of oidc-provider, so
 * that one endpoint answers for opaque and JWT access tokens, refresh tokens, API keys and service
 * JWTs. Plain middleware rather than a router: this is the hot path.
 */
export function introspectionEndpoint(path: string, auth: CallerAuthDeps, introspector: Introspector, decorate?: AnswerDecorator) {
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== path) return next();
    if (ctx.method !== 'POST') {
      ctx.set('Allow', 'POST');
      return sendOAuthError(ctx, 405, 'invalid_request', 'use POST');
    }
    // RFC 7662 §2.1: parameters are sent form-encoded.
    // A plain prefix test: type-is is measurably slow on the hot path.
    if (!(ctx.req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return sendOAuthError(ctx, 400, 'invalid_request', 'only application/x-www-form-urlencoded bodies are supported');
    }
    const raw = await readForm(ctx, 16 * 1024);
    if (raw === undefined) return;
    const params = new URLSearchParams(raw);
    let caller: Caller;
    try {
      caller = await authenticateCaller(auth, ctx.get('authorization') || undefined, params);
    } catch (err) {
      if (err instanceof CallerAuthError) return sendOAuthError(ctx, 401, 'invalid_client', err.description);
      throw err;
    }
    const token = params.get('token');
    if (!token) return sendOAuthError(ctx, 400, 'invalid_request', 'missing required parameter: token');
    let answer = await introspector.introspect(token, caller, params.get('token_type_hint') ?? undefined);
    if (decorate && answer.active) answer = await decorate(answer, params, caller);
    sendOAuth(ctx, 200, answer);
  };
}
