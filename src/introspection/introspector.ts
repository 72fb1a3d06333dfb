import { decodeJwt } from 'jose';
import type { ActiveAnswer, Answer, Caller } from './types.js';
import { INACTIVE } from './types.js';
import { AnswerCache } from './answer-cache.js';
import { NO_CACHE } from './resolvers/api-key.js';

export interface IntrospectorParts {
  issuer: string;
  cache: AnswerCache;
  /** True when the value has the API-key shape (prefix and checksum): no store is touched for it. */
  looksLikeApiKey: (token: string) => boolean;
  apiKey?: (token: string) => Promise<ActiveAnswer | null>;
  jwtAccessToken: (token: string) => Promise<ActiveAnswer | null>;
  serviceJwt: (token: string) => Promise<ActiveAnswer | null>;
  opaque: (token: string, caller: Caller, hint?: string) => Promise<ActiveAnswer | null>;
  /** Counts a use of an API key answered from the cache (`last_used_at`). */
  onCachedApiKey?: (keyId: string) => void;
}

/**
 * One introspection for every credential kind. Dispatch is by shape, cheapest first:
 * API-key prefix and checksum → JWT (own issuer: access token; else: service JWT) → opaque.
 */
export class Introspector {
  constructor(private readonly p: IntrospectorParts) {}

  async introspect(token: string, caller: Caller, hint?: string): Promise<Answer> {
    if (!token || token.length > 8192) return INACTIVE;
    const key = AnswerCache.keyOf(token);
    const cached = this.p.cache.get(key);
    if (cached) {
      if (cached.key_id && cached.credential_type === 'api_key') this.p.onCachedApiKey?.(cached.key_id);
      return cached;
    }
    const version = this.p.cache.version;
    const answer = await this.resolve(token, caller, hint);
    if (!answer) return INACTIVE;
    // Refresh-token answers depend on who asks; never share them through the cache.
    if (answer.credential_type !== 'refresh_token' && !(answer as any)[NO_CACHE]) this.p.cache.set(key, answer, version);
    return answer;
  }

  private async resolve(token: string, caller: Caller, hint?: string): Promise<ActiveAnswer | null> {
    if (this.p.looksLikeApiKey(token)) return this.p.apiKey ? this.p.apiKey(token) : null;
    if (token.split('.').length === 3) {
      let iss: string | undefined;
      try {
        iss = decodeJwt(token).iss;
      } catch {
        return null;
      }
      return iss === this.p.issuer ? this.p.jwtAccessToken(token) : this.p.serviceJwt(token);
    }
    return this.p.opaque(token, caller, hint);
  }
}
