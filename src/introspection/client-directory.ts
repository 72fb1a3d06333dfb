import type { DataSource } from 'typeorm';
import type { KeyValueStore } from '../storage/kv.js';
import { OAuthClientEntity } from '../oauth/entities.js';

export interface ClientRecord {
  clientId: string;
  orgId: string;
  introspect: boolean;
  secretHash: string | null;
  authMethod: string;
  grantTypes: string[];
  scope: string[];
  jwks?: { keys: Record<string, unknown>[] };
  jwksUri?: string;
}

export const CLIENTS_CHANGED = 'clients:changed';

/**
 * Client records for the hot path, cached in-process. Any change to a client publishes on
 * CLIENTS_CHANGED and every instance drops its copy, so a deleted client or rotated secret stops
 * working everywhere at once; the TTL only bounds memory and missed messages.
 */
export class ClientDirectory {
  private readonly cache = new Map<string, { rec: ClientRecord | null; until: number }>();
  private generation = 0;

  constructor(
    private readonly ds: DataSource,
    kv: KeyValueStore,
    private readonly ttlMs = 30_000,
  ) {
    void kv.subscribe(CLIENTS_CHANGED, () => {
      this.generation++;
      this.cache.clear();
    });
  }

  async get(clientId: string): Promise<ClientRecord | null> {
    const hit = this.cache.get(clientId);
    if (hit && hit.until > Date.now()) return hit.rec;
    const gen = this.generation;
    const row = await this.ds.getRepository(OAuthClientEntity).findOneBy({ clientId });
    const m = (row?.metadata ?? {}) as Record<string, any>;
    const rec: ClientRecord | null = row
      ? {
          clientId: row.clientId,
          orgId: row.orgId,
          introspect: row.introspect,
          secretHash: row.secretHash,
          authMethod: m.token_endpoint_auth_method ?? 'client_secret_basic',
          grantTypes: m.grant_types ?? [],
          scope: String(m.scope ?? '').split(' ').filter(Boolean),
          jwks: m.jwks,
          jwksUri: m.jwks_uri,
        }
      : null;
    if (gen === this.generation) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(clientId, { rec, until: Date.now() + this.ttlMs });
    }
    return rec;
  }
}
