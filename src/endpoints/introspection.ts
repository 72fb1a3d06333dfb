import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { importJWK, SignJWT, type JWK } from 'jose';
import { logRequest } from '../http/logger.js';
import type { CredentialResolver } from '../credentials/resolver.js';
import type { ResolvedCredential } from '../credentials/types.js';
import type { StoredKey } from '../oauth/signing-keys.js';
import { authenticateClient, type ClientAuthDeps } from './client-auth.js';
import { isForm, readForm } from './form.js';
import { activeAnswer, inactiveAnswer, sees, type Answer, type Caller } from './introspection-answer.js';
import { errorReply, OAuthError, oauthErrors, sendNode, type OAuthReply } from '../http/oauth-error.js';
import { recordIntrospectionReply } from '../metrics/registry.js';

export const INTROSPECTION_PATH = '/token/introspection';

/** Adds the credential's rate-limit state to an active answer when the caller asks for it. */
export type RateLimitDecorator = (resolved: ResolvedCredential, params: URLSearchParams, caller?: { clientId: string }) => Promise<Record<string, unknown> | undefined>;

/** RFC 9701 §5: the media type of a signed introspection response. */
export const JWT_RESPONSE_TYPE = 'application/token-introspection+jwt';

export interface IntrospectionDeps {
  issuer: string;
  resolver: CredentialResolver;
  clientAuth: ClientAuthDeps;
  rateLimit?: RateLimitDecorator;
  /** The key that signs RFC 9701 responses (RS256 by default, §6). */
  responseSigningKey: StoredKey;
  logger: Logger;
  trustProxy: boolean;
}

/**
 * POST /token/introspection (RFC 7662): one endpoint for opaque and JWT access tokens, refresh tokens,
 * API keys, exchanged tokens and service JWTs. This is the hot path: workflow services call it on
 * every request they serve. It runs on the bare Node request, before Koa builds a context (measured:
 * Koa's context, compose and respond cost more than the introspection itself), and keeps Flowgate's
 * request id and request log. Returns a handler that answers and returns true for this path.
 */
export function introspectionEndpoint(d: IntrospectionDeps) {
  const endpointUrl = d.issuer + INTROSPECTION_PATH;
  let signingKey: Promise<CryptoKey | Uint8Array> | undefined;

  async function answer(req: IncomingMessage, params: URLSearchParams): Promise<{ caller: Caller; answer: Answer }> {
    const client = (await authenticateClient(d.clientAuth, req.headers.authorization || undefined, params, { endpointUrl }))!;
    // RFC 7662 §2.1: the endpoint MUST require authorization; here, a permission given at registration.
    if (!client.introspect) throw oauthErrors.invalidClient('client is not allowed to introspect');
    const caller: Caller = { clientId: client.clientId, orgId: client.orgId };
    return { caller, answer: await answerFor(caller, params) };
  }

  async function answerFor(caller: Caller, params: URLSearchParams): Promise<Answer> {
    const token = params.get('token');
    if (!token) throw oauthErrors.invalidRequest('missing required parameter: token');
    const r = await d.resolver.resolve(token, { clientId: caller.clientId }, params.get('token_type_hint') ?? undefined);
    if (!r.ok) return inactiveAnswer(r, caller);
    // An organization's resource servers see only that organization's credentials (RFC 7662 §2.2:
    // "not allowed to introspect this particular token" answers inactive).
    // A refresh token is answered only to its own client (the resolver checked), whatever its organization.
    if (r.kind !== 'refresh_token' && !sees(caller, r.orgId)) return inactiveAnswer({ ok: false, status: 'unknown' }, caller);
    // The SDK says where it found the credential; a key from a place its organization refuses is not
    // active for this request.
    if (params.get('credential_source') === 'query' && !r.queryAllowed) return inactiveAnswer('query_key_disabled', caller);
    const active = activeAnswer(r, d.issuer);
    const ratelimit = d.rateLimit ? await d.rateLimit(r, params, caller) : undefined;
    return ratelimit ? { ...active, ratelimit } : active;
  }

  /** RFC 9701: the answer as a JWT signed by Flowgate, for resource servers that ask for one. */
  async function signed(a: Answer, audience: string): Promise<OAuthReply> {
    const k = d.responseSigningKey;
    if (!signingKey) {
      const { created_at: _c, retired_at: _r, ...jwk } = k;
      signingKey = importJWK(jwk as JWK, k.alg);
    }
    const jwt = await new SignJWT({ token_introspection: a })
      .setProtectedHeader({ alg: k.alg!, kid: k.kid, typ: 'token-introspection+jwt' })
      .setIssuer(d.issuer)
      .setAudience(audience)
      .setIssuedAt()
      .sign(await signingKey);
    return { status: 200, body: jwt, contentType: JWT_RESPONSE_TYPE };
  }

  async function handle(req: IncomingMessage): Promise<OAuthReply> {
    if (req.method !== 'POST') throw oauthErrors.methodNotAllowed();
    // RFC 7662 §2.1: parameters are sent form-encoded.
    if (!isForm(req.headers['content-type'])) throw oauthErrors.invalidRequest('only application/x-www-form-urlencoded bodies are supported');
    const { params } = await readForm(req, 16 * 1024);
    const { caller, answer: a } = await answer(req, params);
    if ((req.headers.accept ?? '').includes(JWT_RESPONSE_TYPE)) return signed(a, caller.clientId);
    return { status: 200, body: a as unknown as Record<string, unknown> };
  }

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== INTROSPECTION_PATH) return false;
    const start = performance.now();
    const given = req.headers['x-request-id'];
    const reqId = typeof given === 'string' && /^[\w-]{1,64}$/.test(given) ? given : randomUUID();
    const send = (r: OAuthReply) => {
      sendNode(res, r, { 'X-Request-Id': reqId });
      recordIntrospectionReply(r.status, r.body as Record<string, unknown>);
      if (d.logger.isLevelEnabled('info')) logRequest(d.logger, start, { reqId, method: req.method, url, status: r.status, ip: clientIp(req, d.trustProxy) });
    };
    handle(req).then(send, (err) => {
      if (err instanceof OAuthError) return send(errorReply(err));
      d.logger.error({ err, reqId }, 'introspection failed');
      if (!res.headersSent) send(errorReply(new OAuthError(500, 'server_error', 'internal error')));
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
