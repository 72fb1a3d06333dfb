import { createHash } from 'node:crypto';

/** What Flowgate's introspection says of an active credential (RFC 7662 §2.2 fields plus Flowgate's). */
export interface ActiveCredential {
  active: true;
  scope?: string;
  client_id?: string;
  sub?: string;
  exp?: number;
  iat?: number;
  iss?: string;
  aud?: string | string[];
  token_type?: string;
  jti?: string;
  credential_type: 'access_token' | 'refresh_token' | 'api_key' | 'service_jwt';
  org_id?: string | null;
  team_id?: string | null;
  workflow_id?: string | null;
  /** The API key behind the credential: an API key itself, or a token exchanged for one. */
  key_id?: string;
  /** Present when the introspection asked for it (ratelimit_category, or ratelimit_method + ratelimit_route). */
  ratelimit?: RateLimitState;
  [extra: string]: unknown;
}

export interface RateLimitState {
  limit: number;
  remaining: number;
  /** Unix seconds when the oldest counted request leaves the window. */
  reset: number;
  window?: number;
  /** The category (policy) the request counted against. */
  policy?: string;
  /** Seconds until reset, by Flowgate's clock (immune to this host's clock skew). */
  reset_after?: number;
  limited?: boolean;
  retry_after?: number;
}

/** Why an API key is inactive: told only to a resource server of the key's own organization. */
export type InactiveReason = 'expired' | 'revoked' | 'rolled' | 'query_key_disabled' | 'unknown';

export interface InactiveCredential {
  active: false;
  /** Flowgate's extension (RFC 7662 §2.2 allows more members): present only for API keys, and only to their organization. */
  inactive_reason?: InactiveReason;
  /** ISO 8601, with `inactive_reason: "expired"`. */
  expired_at?: string;
}

export type IntrospectionResult = ActiveCredential | InactiveCredential;

export interface SdkLogger {
  error(message: string): void;
}

export interface IntrospectionClientOptions {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  /** Positive answers are reused this long (bounded by the credential's expiry). Default 1000 ms. */
  cacheTtlMs?: number;
  maxEntries?: number;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Where configuration problems are reported (once each). Default: console. */
  logger?: SdkLogger;
}

/**
 * Why Flowgate could not answer. `unavailable`: unreachable, timed out, overloaded or failing: try
 * again. `misconfigured`: Flowgate refused this service's own client credentials: only the operator
 * can fix it.
 */
export class IntrospectionFailure extends Error {
  constructor(
    readonly kind: 'unavailable' | 'misconfigured',
    message: string,
  ) {
    super(message);
    this.name = 'IntrospectionFailure';
  }
}

/** RFC 6749 §2.3.1: form-urlencode id and secret before Basic encoding. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

/**
 * Reports each distinct configuration problem once (not once per request), and again only after it
 * was fixed and came back.
 */
export class ProblemReporter {
  private readonly reported = new Set<string>();
  constructor(private readonly logger: SdkLogger) {}

  report(key: string, message: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.logger.error(message);
  }

  resolved(): void {
    this.reported.clear();
  }
}

/**
 * Reads a failed answer of one of Flowgate's endpoints that authenticate this service as a client
 * (introspection, rate-limit check) and turns it into an IntrospectionFailure, reporting what to fix.
 */
export async function failureOf(res: Response, what: { endpoint: string; clientId: string; reporter: ProblemReporter }): Promise<IntrospectionFailure> {
  if (res.status === 401 || res.status === 403) {
    let description = '';
    try {
      const body = (await res.json()) as { error?: unknown; error_description?: unknown };
      description = [body.error, body.error_description].filter((x) => typeof x === 'string').join(': ');
    } catch {
      // not JSON: the status says enough
    }
    const permission = /introspect|not allowed|permission/i.test(description);
    const hint = permission
      ? `the client "${what.clientId}" authenticated but may not introspect: give it the introspection permission (dashboard: OAuth Apps → edit → "Resource server", or register it with \`npm run cli -- clients create ... --introspect\`)`
      : `check clientId and clientSecret: the client "${what.clientId}" must exist in Flowgate, use client_secret_basic, and the secret must be the current one (rotating it in Flowgate invalidates the old one)`;
    what.reporter.report(
      `${res.status}:${description}`,
      `[@flowgate/sdk] Flowgate refused this service's client credentials at ${what.endpoint} (HTTP ${res.status}${description ? ` ${description}` : ''}): ${hint}. ` +
        'Until this is fixed every authenticated request is answered 500 AUTH_MISCONFIGURED.',
    );
    return new IntrospectionFailure('misconfigured', `Flowgate refused the client credentials (HTTP ${res.status})`);
  }
  return new IntrospectionFailure('unavailable', `Flowgate answered HTTP ${res.status}`);
}

/**
 * Calls Flowgate's introspection endpoint (RFC 7662) with the resource server's own client
 * credentials, and caches positive answers briefly. The TTL is short by default (1 s) because a
 * revocation is seen only when the cache entry lapses; raise it only where that delay is acceptable.
 */
export class IntrospectionClient {
  private readonly cache = new Map<string, { result: ActiveCredential; until: number }>();
  private readonly authorization: string;
  private readonly ttl: number;
  private readonly max: number;
  private readonly doFetch: typeof fetch;
  readonly reporter: ProblemReporter;

  constructor(private readonly o: IntrospectionClientOptions) {
    this.authorization = basicAuthorization(o.clientId, o.clientSecret);
    this.ttl = o.cacheTtlMs ?? 1000;
    this.max = o.maxEntries ?? 10_000;
    this.doFetch = o.fetch ?? fetch;
    this.reporter = new ProblemReporter(o.logger ?? console);
  }

  /** Throws IntrospectionFailure when Flowgate gives no answer about the credential. */
  async introspect(token: string, extra: Record<string, string> = {}): Promise<IntrospectionResult> {
    // Answers that carry rate-limit state must not be reused: each request counts.
    const cacheable = Object.keys(extra).length === 0;
    const key = createHash('sha256').update(token).digest('base64url');
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit && hit.until > Date.now()) return hit.result;
    }
    let res: Response;
    try {
      res = await this.doFetch(this.o.endpoint, {
        method: 'POST',
        headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, ...extra }).toString(),
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
      });
    } catch (err) {
      throw new IntrospectionFailure('unavailable', `Flowgate could not be reached: ${(err as Error).message}`);
    }
    // RFC 7662 §2.3 / RFC 6749 §5.2: a 400 is about the request, here the presented token (text no
    // field accepts, for instance): the credential is not active, the service is not misconfigured.
    if (res.status === 400) {
      await res.body?.cancel();
      return { active: false };
    }
    if (!res.ok) throw await failureOf(res, { endpoint: this.o.endpoint, clientId: this.o.clientId, reporter: this.reporter });
    let result: IntrospectionResult;
    try {
      result = (await res.json()) as IntrospectionResult;
    } catch {
      throw new IntrospectionFailure('unavailable', 'Flowgate answered with a body that is not JSON');
    }
    if (typeof result !== 'object' || result === null || typeof result.active !== 'boolean') {
      throw new IntrospectionFailure('unavailable', 'Flowgate answered without "active"');
    }
    this.reporter.resolved();
    if (result.active && cacheable && this.ttl > 0) {
      const ttl = Math.min(this.ttl, result.exp ? result.exp * 1000 - Date.now() : this.ttl);
      if (ttl > 0) {
        if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(key, { result, until: Date.now() + ttl });
      }
    }
    return result;
  }

  clear(): void {
    this.cache.clear();
  }
}
