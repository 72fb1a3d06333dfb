import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { CredentialParseError, parseCredential, type CredentialRequest, type PresentedCredential } from './credentials.js';
import { FlowgateError, flowgateErrors, type CredentialNoun } from './errors.js';
import {
  IntrospectionClient,
  IntrospectionFailure,
  type ActiveCredential,
  type InactiveCredential,
  type RateLimitState,
  type SdkLogger,
} from './introspection-client.js';
import { rateLimitHeaders, rateLimitedError } from './ratelimit.js';

/** What a handler learns about its caller. */
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

export interface FlowgateOptions {
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
  /** Accept the `api-key` query parameter. Default true. */
  allowQuery?: boolean;
  /**
   * Rate limits decided by Flowgate: every request is introspected with its method and route (or a
   * category), answers carry X-RateLimit-* and RateLimit-Policy / RateLimit headers, and a spent
   * credential gets 429 RATE_LIMITED with Retry-After. Each request must count, so answers are not
   * cached and local JWT verification is off.
   */
  rateLimit?: boolean;
  fetch?: typeof fetch;
  /** Timeout of each call to Flowgate, ms. Default 5000. */
  timeoutMs?: number;
  /** Where configuration problems are reported, once each. Default: console. */
  logger?: SdkLogger;
}

/** A request as every adapter sees it. */
export interface AuthRequest extends CredentialRequest {
  method: string;
  /** The route pattern (`/api/v1/workflows/:id/run`) or the path: Flowgate maps it to a rate-limit category. */
  route: string;
  /** The end client's IP, for per-IP limits. */
  ip?: string;
  /** A rate-limit category that overrides the method-and-route mapping. */
  category?: string;
}

export type AuthOutcome =
  | { ok: true; identity: FlowgateIdentity; headers: Record<string, string> }
  | { ok: false; error: FlowgateError };

/** Any deployment's key shape (`<prefix><38 base62>`), only to word the 401 for the caller. */
const API_KEY_SHAPE = /^[A-Za-z][A-Za-z0-9]{0,9}[-_][0-9A-Za-z]{38}$/;

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
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    credentialType: 'access_token',
    orgId: str(p.org_id),
    teamId: str(p.team_id),
    workflowId: str(p.workflow_id),
    scopes: typeof p.scope === 'string' ? p.scope.split(' ').filter(Boolean) : [],
    sub: p.sub ?? null,
    clientId: str(p.client_id),
    keyId: str(p.key_id),
    expiresAt: p.exp ?? null,
    verifiedBy: 'local_jwt',
    raw: p,
  };
}

/** The error for an inactive credential, with Flowgate's reason when it gave one. */
function inactiveError(presented: PresentedCredential, answer: InactiveCredential | null): FlowgateError {
  switch (answer?.inactive_reason) {
    case 'expired':
      return answer.expired_at ? flowgateErrors.expiredKey(answer.expired_at) : flowgateErrors.invalidKey();
    case 'query_key_disabled':
      return flowgateErrors.queryKeyDisabled('organization');
    case 'revoked':
    case 'rolled':
    case 'unknown':
      return flowgateErrors.invalidKey();
    default:
      return presented.source !== 'authorization' || API_KEY_SHAPE.test(presented.value) ? flowgateErrors.invalidKey() : flowgateErrors.invalidToken();
  }
}

/** "API key", "Access token" or "Service token": how messages name the caller's credential. */
export function credentialNoun(id: FlowgateIdentity): CredentialNoun {
  return id.credentialType === 'api_key' ? 'API key' : id.credentialType === 'service_jwt' ? 'Service token' : 'Access token';
}

/** 403 INSUFFICIENT_PERMISSIONS for the first scope the caller lacks, or undefined. */
export function scopeError(id: FlowgateIdentity, scopes: readonly string[]): FlowgateError | undefined {
  const missing = scopes.find((s) => !id.scopes.includes(s));
  return missing === undefined ? undefined : flowgateErrors.insufficientScope(missing);
}

/** 403 WORKFLOW_ACCESS_DENIED when the credential is restricted to another workflow, or undefined. */
export function workflowError(id: FlowgateIdentity, workflowId: string): FlowgateError | undefined {
  return id.workflowId && id.workflowId !== workflowId ? flowgateErrors.wrongWorkflow(credentialNoun(id)) : undefined;
}

/** 403 ORGANIZATION_ACCESS_DENIED unless the credential acts for this organization, or undefined. */
export function organizationError(id: FlowgateIdentity, orgId: string): FlowgateError | undefined {
  return id.orgId !== orgId ? flowgateErrors.wrongOrganization(credentialNoun(id)) : undefined;
}

/**
 * The one core every adapter (Koa, Express, Fetch API) runs on: reads the credential with the parser
 * Flowgate itself uses, asks Flowgate who it is (or verifies a short-lived JWT locally), and answers
 * an identity with its rate-limit headers, or the error to send.
 */
export class Flowgate {
  readonly issuer: string;
  readonly client: IntrospectionClient;
  readonly options: FlowgateOptions;
  private readonly audience: string;
  private readonly localMax: number;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(o: FlowgateOptions) {
    for (const name of ['issuer', 'clientId', 'clientSecret'] as const) {
      if (typeof o[name] !== 'string' || !o[name]) throw new TypeError(`@flowgate/sdk: the ${name} option is required`);
    }
    this.options = o;
    this.issuer = o.issuer.replace(/\/$/, '');
    this.audience = o.audience ?? `${this.issuer}/api`;
    this.client = new IntrospectionClient({
      endpoint: o.introspectionEndpoint ?? `${this.issuer}/token/introspection`,
      clientId: o.clientId,
      clientSecret: o.clientSecret,
      cacheTtlMs: o.cacheTtlMs,
      fetch: o.fetch,
      timeoutMs: o.timeoutMs,
      logger: o.logger,
    });
    this.localMax = o.rateLimit ? 0 : (o.localJwtMaxLifetime ?? 300);
    this.jwks = createRemoteJWKSet(new URL(`${this.issuer}/jwks`), { cooldownDuration: 30_000, cacheMaxAge: 600_000, timeoutDuration: o.timeoutMs ?? 5000 });
  }

  async authenticate(req: AuthRequest): Promise<AuthOutcome> {
    let presented: PresentedCredential | undefined;
    try {
      presented = parseCredential(req, { allowQuery: this.options.allowQuery !== false });
    } catch (err) {
      if (err instanceof CredentialParseError) return { ok: false, error: flowgateErrors.badCredential(err.code, err.message) };
      throw err;
    }
    if (!presented) {
      const inQuery = req.query && req.query['api-key'];
      return { ok: false, error: this.options.allowQuery === false && inQuery ? flowgateErrors.queryKeyDisabled('service') : flowgateErrors.missing() };
    }
    const local = await this.verifyLocally(presented.value);
    if (local === 'invalid') return { ok: false, error: flowgateErrors.invalidToken() };
    if (local === 'unavailable') return { ok: false, error: flowgateErrors.unavailable() };
    if (local) return { ok: true, identity: local, headers: {} };

    // Where the key was found matters: an organization may refuse keys in the query string.
    const extra: Record<string, string> = {
      ...(this.options.rateLimit && (req.category ? { ratelimit_category: req.category } : { ratelimit_method: req.method, ratelimit_route: req.route })),
      ...(this.options.rateLimit && req.ip && { ratelimit_ip: req.ip }),
      ...(presented.source === 'query' && { credential_source: 'query' }),
    };
    let answer;
    try {
      answer = await this.client.introspect(presented.value, extra);
    } catch (err) {
      if (err instanceof IntrospectionFailure) return { ok: false, error: err.kind === 'misconfigured' ? flowgateErrors.misconfigured() : flowgateErrors.unavailable() };
      throw err;
    }
    if (!answer.active) return { ok: false, error: inactiveError(presented, answer) };
    const limit: RateLimitState | undefined = answer.ratelimit;
    const headers = limit ? rateLimitHeaders(limit) : {};
    if (limit?.limited) return { ok: false, error: rateLimitedError(limit) };
    return { ok: true, identity: fromIntrospection(answer), headers };
  }

  /** An identity for a short-lived JWT of this issuer, 'invalid' for a bad one, null to introspect. */
  private async verifyLocally(token: string): Promise<FlowgateIdentity | 'invalid' | 'unavailable' | null> {
    if (this.localMax <= 0 || token.split('.').length !== 3) return null;
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return null;
    }
    const lifetime = (claims.exp ?? Infinity) - (claims.iat ?? 0);
    if (claims.iss !== this.issuer || lifetime > this.localMax) return null;
    try {
      // RFC 9068 §4: typ at+jwt, the issuer, and this API as the audience.
      const { payload } = await jwtVerify(token, this.jwks, { issuer: this.issuer, audience: this.audience, typ: 'at+jwt' });
      return fromJwt(payload);
    } catch (err) {
      // Flowgate's key set could not be fetched: no answer about the token, like an unreachable introspection.
      const keysUnreachable = err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError);
      return keysUnreachable ? 'unavailable' : 'invalid';
    }
  }
}

export { FlowgateError };
