import { createHash } from 'node:crypto';

/** What Flowgate's introspection says of an active credential (RFC 7662 fields plus Flowgate's). */
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
  key_id?: string;
  /** Present when the introspection asked for it (ratelimit_category, or ratelimit_method + ratelimit_route). */
  ratelimit?: {
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
  };
  [extra: string]: unknown;
}

export type IntrospectionResult = ActiveCredential | { active: false };

export interface IntrospectionClientOptions {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  /** Positive answers are reused this long (bounded by the credential's expiry). Default 1000 ms. */
  cacheTtlMs?: number;
  maxEntries?: number;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * Calls Flowgate's introspection endpoint with the resource server's own client credentials, and
 * caches positive answers briefly. The TTL is short by default (1 s) because revocation is only seen
 * when the cache entry lapses; raise it only where that delay is acceptable.
 */
export class IntrospectionClient {
  private readonly cache = new Map<string, { result: ActiveCredential; until: number }>();
  private readonly authorization: string;
  private readonly ttl: number;
  private readonly max: number;
  private readonly doFetch: typeof fetch;

  constructor(private readonly o: IntrospectionClientOptions) {
    // RFC 6749 §2.3.1: form-urlencode id and secret before Basic encoding.
    const id = encodeURIComponent(o.clientId);
    const secret = encodeURIComponent(o.clientSecret);
    this.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    this.ttl = o.cacheTtlMs ?? 1000;
    this.max = o.maxEntries ?? 10_000;
    this.doFetch = o.fetch ?? fetch;
  }

  async introspect(token: string, extra: Record<string, string> = {}): Promise<IntrospectionResult> {
    // Answers that carry rate-limit state must not be reused: each request counts.
    const cacheable = Object.keys(extra).length === 0;
    const key = createHash('sha256').update(token).digest('base64url');
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit && hit.until > Date.now()) return hit.result;
    }
    const res = await this.doFetch(this.o.endpoint, {
      method: 'POST',
      headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ token, ...extra }).toString(),
      signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
    });
    if (!res.ok) throw new Error(`introspection failed with HTTP ${res.status}`);
    const result = (await res.json()) as IntrospectionResult;
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
