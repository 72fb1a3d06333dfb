import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { AppError } from '../http/errors.js';
import { safeUrl } from '../http/logger.js';
import { readRawBody } from '../http/raw-body.js';
import { authenticateCaller, CallerAuthError, type CallerAuthDeps } from './client-auth.js';
import type { Introspector } from './introspector.js';
import { INACTIVE, type Answer, type Caller } from './types.js';
import { QUERY_ALLOWED } from './resolvers/api-key.js';

/** Hook for the rate-limit issue: decorates an active answer with the credential's limit state. */
export type AnswerDecorator = (answer: Answer, params: URLSearchParams, caller: Caller) => Promise<Answer>;

export interface IntrospectionEndpointDeps {
  path: string;
  auth: CallerAuthDeps;
  introspector: Introspector;
  decorate?: AnswerDecorator;
  logger: Logger;
  trustProxy: boolean;
}

/** The answer as plain data: status, extra headers and the JSON body (RFC 6749 §5 / RFC 7662 §2.2). */
interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

const oauthError = (status: number, error: string, description: string): Reply => ({
  status,
  body: { error, error_description: description },
  // RFC 6749 §5.2: a 401 invalid_client carries a challenge.
  ...(status === 401 && { headers: { 'WWW-Authenticate': 'Basic realm="flowgate"' } }),
});

/**
 * POST <introspection_endpoint> (RFC 7662), served by Flowgate itself in front of oidc-provider, so
 * that one endpoint answers for opaque and JWT access tokens, refresh tokens, API keys and service
 * JWTs. This is the hot path: workflow services call it on every request they serve. It runs on the
 * bare Node request, before Koa builds a context (measured: Koa's context, compose and respond cost
 * more than the introspection itself), and keeps Flowgate's request id and request log.
 *
 * Returns a handler that answers and returns true for this path, false for anything else.
 */
export function introspectionEndpoint(d: IntrospectionEndpointDeps) {
  async function reply(req: IncomingMessage, params: URLSearchParams): Promise<Reply> {
    let caller: Caller;
    try {
      caller = await authenticateCaller(d.auth, req.headers.authorization || undefined, params);
    } catch (err) {
      if (err instanceof CallerAuthError) return oauthError(401, 'invalid_client', err.description);
      throw err;
    }
    const token = params.get('token');
    if (!token) return oauthError(400, 'invalid_request', 'missing required parameter: token');
    let answer = await d.introspector.introspect(token, caller, params.get('token_type_hint') ?? undefined);
    // Seed 001: an organization may refuse API keys sent in the query string. The SDK says where it
    // found the credential; a key from a refused place is not active for this request.
    if (answer.active && params.get('credential_source') === 'query' && (answer as unknown as Record<symbol, unknown>)[QUERY_ALLOWED] === false) {
      answer = INACTIVE;
    }
    if (d.decorate && answer.active) answer = await d.decorate(answer, params, caller);
    return { status: 200, body: answer };
  }

  async function handle(req: IncomingMessage): Promise<Reply> {
    if (req.method !== 'POST') return { ...oauthError(405, 'invalid_request', 'use POST'), headers: { Allow: 'POST' } };
    // RFC 7662 §2.1: parameters are sent form-encoded.
    if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return oauthError(400, 'invalid_request', 'only application/x-www-form-urlencoded bodies are supported');
    }
    let raw: Buffer;
    try {
      raw = await readRawBody(req, 16 * 1024);
    } catch (err) {
      if (err instanceof AppError && err.status === 413) return oauthError(413, 'invalid_request', 'request body too large');
      throw err;
    }
    return reply(req, new URLSearchParams(raw.toString('utf8')));
  }

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== d.path) return false;
    const start = performance.now();
    const given = req.headers['x-request-id'];
    const reqId = typeof given === 'string' && /^[\w-]{1,64}$/.test(given) ? given : randomUUID();
    const send = (r: Reply) => {
      const json = JSON.stringify(r.body);
      res.writeHead(r.status, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(json),
        'Cache-Control': 'no-store',
        Pragma: 'no-cache',
        'X-Request-Id': reqId,
        'X-Content-Type-Options': 'nosniff',
        ...r.headers,
      });
      res.end(json);
      if (d.logger.isLevelEnabled('info')) {
        d.logger.info({ reqId, method: req.method, url: safeUrl(url), status: r.status, ms: Math.round((performance.now() - start) * 10) / 10, ip: clientIp(req, d.trustProxy) }, 'request');
      }
    };
    handle(req).then(send, (err) => {
      d.logger.error({ err, reqId }, 'introspection failed');
      if (!res.headersSent) send({ status: 500, body: { error: 'server_error', error_description: 'internal error' } });
      else res.destroy();
    });
    return true;
  };
}

/** The caller's address as Koa's ctx.ip reports it (X-Forwarded-For only behind a trusted proxy). */
function clientIp(req: IncomingMessage, trustProxy: boolean): string | undefined {
  const xff = trustProxy ? req.headers['x-forwarded-for'] : undefined;
  if (typeof xff === 'string' && xff) return xff.split(',')[0].trim();
  return req.socket.remoteAddress;
}
