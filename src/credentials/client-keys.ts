import { createLocalJWKSet, createRemoteJWKSet, customFetch, type FetchImplementation, type JWTVerifyGetKey } from 'jose';
import type { ClientRecord } from './client-directory.js';

/** A client's registered public keys (inline `jwks` or `jwks_uri`), as a jose key resolver. */
export class ClientKeys {
  private readonly byClient = new Map<string, { source: string; getKey: JWTVerifyGetKey }>();

  /** `fetch`: the outbound-policy fetch (src/outbound/fetch.ts), so a jwks_uri cannot reach inside the network. */
  constructor(private readonly fetch?: FetchImplementation) {}

  for(client: ClientRecord): JWTVerifyGetKey | undefined {
    const source = client.jwks ? JSON.stringify(client.jwks) : client.jwksUri;
    if (!source) return undefined;
    const hit = this.byClient.get(client.clientId);
    if (hit && hit.source === source) return hit.getKey;
    const getKey = client.jwks
      ? createLocalJWKSet(client.jwks as any)
      : createRemoteJWKSet(new URL(client.jwksUri!), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000, ...(this.fetch && { [customFetch]: this.fetch }) });
    this.byClient.set(client.clientId, { source, getKey });
    return getKey;
  }
}
