import type { OAuthClient } from '../oauth/entities.js';
import type { ClientRows } from '../oauth/client-rows.js';

export interface ClientRecord {
  clientId: string;
  /** null: a platform-wide client registered by an operator (sees every organization). */
  orgId: string | null;
  introspect: boolean;
  secretHash: string | null;
  authMethod: string;
  grantTypes: string[];
  scope: string[];
  jwks?: { keys: Record<string, unknown>[] };
  jwksUri?: string;
}

/**
 * Client records for the hot path, in the shape introspection needs, over the shared cached
 * `oauth_clients` rows (src/oauth/client-rows.ts: invalidated on every instance when a client changes).
 */
export class ClientDirectory {
  private readonly records = new WeakMap<OAuthClient, ClientRecord>();

  constructor(private readonly rows: ClientRows) {}

  async get(clientId: string): Promise<ClientRecord | null> {
    const row = await this.rows.get(clientId);
    if (!row) return null;
    let rec = this.records.get(row);
    if (!rec) {
      const m = row.metadata as Record<string, any>;
      rec = {
        clientId: row.clientId,
        orgId: row.orgId,
        introspect: row.introspect,
        secretHash: row.secretHash,
        authMethod: m.token_endpoint_auth_method ?? 'client_secret_basic',
        grantTypes: m.grant_types ?? [],
        scope: String(m.scope ?? '').split(' ').filter(Boolean),
        jwks: m.jwks,
        jwksUri: m.jwks_uri,
      };
      this.records.set(row, rec);
    }
    return rec;
  }
}
