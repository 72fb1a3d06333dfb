import type { Context, Middleware, Next } from 'koa';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { CredentialParseError, parseCredential } from '../http/credentials.js';
import { IntrospectionClient, type ActiveCredential } from './introspection-client.js';
import { SdkError, sdkErrors, sendSdkError } from './errors.js';

/** What a handler learns about its caller: `ctx.state.flowgate`. */
export interface FlowgateIdentity {
  credentialType: ActiveCredential['credential_type'];
  orgId: string | null;
  teamId: string | null;
  workflowId: string | null;
  scopes: string[];
  sub: string | null;
  clientId: string | null;
  keyId: string | null;
  expiresAt: number | null;
  /** How the answer was reached: Flowgate's introspection, or local JWT verification. */
  verifiedBy: 'introspection' | 'local_jwt';
  raw: ActiveCredential | JWTPayload;
}

export interface FlowgateAuthOptions {
  /** Flowgate's issuer URL, e.g. https://auth.example.com */
  issuer: string;
  /** The resource server's client, registered with the introspection permission. */
  clientId: string;
  clientSecret: string;
  /** Defaults to `${issuer}/token/introspection`. */
  introspectionEndpoint?: string;
  /** The workflow API's identifier (Flowgate's API_AUDIENCE); defaults to `${issuer}/api`. */
  audience?: string;
  /** Positive introspection answers are reused this long; default 1000 ms. */
  cacheTtlMs?: number;
  /**
   * JWT access tokens from this issuer whose whole lifetime is at most this many seconds (exchanged
   * tokens: 300) are verified locally from the JWKS, with no round trip. Longer-lived JWTs are
   * introspected, so that their revocation is seen. 0 turns local verification off.
   */
  localJwtMaxLifetime?: number;
  /** Accept `?api-key=` (seed 001). Default true. */
  allowQuery?: boolean;
  /**
   * Rate limits decided by Flowgate (issue 5). On: every request is introspected with its method and
   * route (Flowgate maps them to read / write / execute), or with `category(ctx)` when given; every
   * authenticated response carries X-RateLimit-Limit / -Remaining / -Reset and the IETF draft's
   * RateLimit-Policy / RateLimit headers, and a spent credential gets 429 RATE_LIMITED with
   * Retry-After. Each request must count, so answers are not cached and local JWT verification is
   * off (a locally verified request would bypass the limit). `ip(ctx)` names the end client for the
   * per-IP `webhook` category (default ctx.ip).
   */
  rateLimit?: boolean | { category?: (ctx: Context) => string | undefined; ip?: (ctx: Context) => string | undefined };
  fetch?: typeof fetch;
}

/** Any deployment's key shape (`<prefix><38 base62>`), only to word the 401 for the caller. */
const API_KEY_SHAPE = /^[A-Za-z][A-Za-z0-9]{0,9}[-_][0-9A-Za-z]{38}$/;

declare module 'koa' {
  interface DefaultState {
    flowgate?: FlowgateIdentity;
  }
}

function fromIntrospection(a: ActiveCredential): FlowgateIdentity {
  return {
    credentialType: a.credential_type,
    orgId: a.org_id ?? null,
    teamId: a.team_id ?? null,
    workflowId: a.workflow_id ?? null,
    scopes: (a.scope ?? '').split(' ').filter(Boolean),
    sub: a.sub ?? null,
    clientId: a.client_id ?? null,
    keyId: a.key_id ?? null,
    expiresAt: a.exp ?? null,
    verifiedBy: 'introspection',
    raw: a,
  };
}

function fromJwt(p: JWTPayload): FlowgateIdentity {
  return {
    credentialType: 'access_token',
    orgId: (p.org_id as string) ?? null,
    teamId: (p.team_id as string) ?? null,
    workflowId: (p.workflow_id as string) ?? null,
    scopes: typeof p.scope === 'string' ? p.scope.split(' ').filter(Boolean) : [],
    sub: p.sub ?? null,
    clientId: (p.client_id as string) ?? null,
    keyId: (p.key_id as string) ?? null,
    expiresAt: p.exp ?? null,
    verifiedBy: 'local_jwt',
    raw: p,
  };
}

/**
 * Koa middleware for workflow services: reads the credential with the same parser Flowgate uses,
 * asks Flowgate who it is (or verifies a short-lived JWT locally), and puts the answer on
 * `ctx.state.flowgate`. Failures answer in the seeds' JSON shape.
 */
export function flowgateAuth(o: FlowgateAuthOptions): Middleware & { client: IntrospectionClient } {
  const issuer = o.issuer.replace(/\/$/, '');
  const audience = o.audience ?? `${issuer}/api`;
  const client = new IntrospectionClient({
    endpoint: o.introspectionEndpoint ?? `${issuer}/token/introspection`,
    clientId: o.clientId,
    clientSecret: o.clientSecret,
    cacheTtlMs: o.cacheTtlMs,
    fetch: o.fetch,
  });
  const rl = o.rateLimit ? (o.rateLimit === true ? {} : o.rateLimit) : undefined;
  const localMax = rl ? 0 : (o.localJwtMaxLifetime ?? 300);
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });

  async function identify(token: string, extra?: Record<string, string>): Promise<FlowgateIdentity | null> {
    if (localMax > 0 && token.split('.').length === 3) {
      try {
        const claims = decodeJwt(token);
        const lifetime = (claims.exp ?? Infinity) - (claims.iat ?? 0);
        if (claims.iss === issuer && lifetime <= localMax) {
          const { payload } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt' });
          return fromJwt(payload);
        }
      } catch {
        return null;
      }
    }
    const answer = await client.introspect(token, extra);
    return answer.active ? fromIntrospection(answer) : null;
  }

  const middleware = async (ctx: Context, next: Next) => {
    let presented;
    try {
      presented = parseCredential({ headers: ctx.headers, query: ctx.query }, { allowQuery: o.allowQuery !== false });
    } catch (err) {
      if (err instanceof CredentialParseError) return sendSdkError(ctx, sdkErrors.malformed(err.message));
      throw err;
    }
    if (!presented) {
      if (o.allowQuery === false && ctx.query['api-key']) return sendSdkError(ctx, sdkErrors.queryDisabled());
      return sendSdkError(ctx, sdkErrors.missing());
    }
    let identity: FlowgateIdentity | null;
    try {
      // Where the key was found matters: an organization may refuse keys in the query string (seed 001).
      const extra = { ...(rl && rateLimitParams(ctx, rl)), ...(presented.source === 'query' && { credential_source: 'query' }) };
      identity = await identify(presented.value, Object.keys(extra).length ? extra : undefined);
    } catch {
      return sendSdkError(ctx, sdkErrors.unavailable());
    }
    const looksLikeKey = presented.source !== 'authorization' || API_KEY_SHAPE.test(presented.value);
    if (!identity) return sendSdkError(ctx, sdkErrors.invalid(looksLikeKey ? 'api_key' : 'token'));
    ctx.state.flowgate = identity;
    const limit = identity.verifiedBy === 'introspection' ? (identity.raw as ActiveCredential).ratelimit : undefined;
    if (limit) {
      ctx.set(rateLimitHeaders(limit));
      if (limit.limited) return sendSdkError(ctx, rateLimited(limit));
    }
    try {
      await next();
    } catch (err) {
      if (err instanceof SdkError) return sendSdkError(ctx, err);
      throw err;
    }
  };
  return Object.assign(middleware, { client });
}

export type RateLimitState = NonNullable<ActiveCredential['ratelimit']>;

/** What introspection is told about the request: a category, or method and route for Flowgate to map. */
function rateLimitParams(ctx: Context, rl: Exclude<FlowgateAuthOptions['rateLimit'], boolean | undefined>): Record<string, string> {
  const category = rl.category?.(ctx);
  // @koa/router sets _matchedRoute to the pattern (/api/v1/workflows/:id/run): one name per route.
  const route = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  const ip = rl.ip ? rl.ip(ctx) : ctx.ip;
  return {
    ...(category ? { ratelimit_category: category } : { ratelimit_method: ctx.method, ratelimit_route: typeof route === 'string' ? route : ctx.path }),
    ...(ip && { ratelimit_ip: ip }),
  };
}

/**
 * Seed 002's X-RateLimit-* (Reset in Unix seconds) and draft-ietf-httpapi-ratelimit-headers-10's
 * `RateLimit-Policy: "write";q=100;w=60` and `RateLimit: "write";r=50;t=30`, the policy named after
 * the category. (Flowgate's server sets the same headers from src/ratelimit/headers.ts; the SDK
 * stands alone, so it carries this small copy.)
 */
export function rateLimitHeaders(l: RateLimitState): Record<string, string> {
  const policy = (l.policy ?? 'default').replace(/[^\w-]/g, '');
  const t = l.reset_after ?? Math.max(0, l.reset - Math.floor(Date.now() / 1000));
  const h: Record<string, string> = {
    'X-RateLimit-Limit': String(l.limit),
    'X-RateLimit-Remaining': String(l.remaining),
    'X-RateLimit-Reset': String(l.reset),
    RateLimit: `"${policy}";r=${l.remaining};t=${t}`,
  };
  if (l.window) h['RateLimit-Policy'] = `"${policy}";q=${l.limit};w=${l.window}`;
  return h;
}

function per(window: number | undefined): string {
  const named: Record<number, string> = { 1: 'second', 60: 'minute', 3600: 'hour', 86400: 'day' };
  return window === undefined ? 'per window' : named[window] ? `per ${named[window]}` : `per ${window} seconds`;
}

/** 429 in the seeds' shape: "Rate limit exceeded. Limit: 100 requests per minute." */
export function rateLimited(l: RateLimitState): SdkError {
  const retryAfter = Math.max(1, l.retry_after ?? l.reset_after ?? 1);
  return new SdkError(429, 'RATE_LIMITED', `Rate limit exceeded. Limit: ${l.limit} requests ${per(l.window)}.`, undefined, { 'Retry-After': String(retryAfter) });
}

function identityOf(ctx: Context): FlowgateIdentity {
  const id = ctx.state.flowgate as FlowgateIdentity | undefined;
  if (!id) throw new Error('flowgateAuth() must run before this middleware');
  return id;
}

function what(id: FlowgateIdentity): string {
  return id.credentialType === 'api_key' ? 'API key' : id.credentialType === 'service_jwt' ? 'Service token' : 'Access token';
}

/** 403 INSUFFICIENT_PERMISSIONS unless the caller holds every scope named. */
export function requireScope(...scopes: string[]): Middleware {
  return async (ctx, next) => {
    const id = identityOf(ctx);
    const missing = scopes.find((s) => !id.scopes.includes(s));
    if (missing) return sendSdkError(ctx, sdkErrors.insufficientScope(missing));
    await next();
  };
}

/**
 * A credential restricted to one workflow may act only on that workflow (seed 000: "API key is not
 * authorized for this workflow"). Call with the workflow the request targets.
 */
export function checkWorkflowAccess(ctx: Context, workflowId: string): void {
  const id = identityOf(ctx);
  if (id.workflowId && id.workflowId !== workflowId) throw sdkErrors.wrongWorkflow(what(id));
}

/** Middleware form: the workflow id comes from the request (e.g. a route parameter). */
export function requireWorkflowAccess(getWorkflowId: (ctx: Context) => string | undefined): Middleware {
  return async (ctx, next) => {
    const wf = getWorkflowId(ctx);
    if (wf !== undefined) {
      try {
        checkWorkflowAccess(ctx, wf);
      } catch (err) {
        if (err instanceof SdkError) return sendSdkError(ctx, err);
        throw err;
      }
    }
    await next();
  };
}

/** Resources belong to one organization; a credential of another organization is refused. */
export function checkOrganization(ctx: Context, orgId: string): void {
  const id = identityOf(ctx);
  if (id.orgId !== orgId) throw sdkErrors.wrongOrganization(what(id));
}
