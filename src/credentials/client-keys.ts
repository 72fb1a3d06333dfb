import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { ClientRecord } from './client-directory.js';

/** A client's registered public keys (inline `jwks` or `jwks_uri`), as a jose key resolver. */
export class ClientKeys {
  private readonly byClient = new Map<string, { source: string; getKey: JWTVerifyGetKey }>();

  for(client: ClientRecord): JWTVerifyGetKey | undefined {
    const source = client.jwks ? JSON.stringify(client.jwks) : client.jwksUri;
    if (!source) return undefined;
    const hit = this.byClient.get(client.clientId);
    if (hit && hit.source === source) return hit.getKey;
    const getKey = client.jwks
      ? createLocalJWKSet(client.jwks as any)
      : createRemoteJWKSet(new URL(client.jwksUri!), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    this.byClient.set(client.clientId, { source, getKey });
    return getKey;
  }
}
