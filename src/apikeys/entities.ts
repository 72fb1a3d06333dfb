import { EntitySchema } from 'typeorm';

/**
 * api_keys: PostgreSQL is the store of record (keys live for months and must survive a Redis
 * flush). The hot path reads it only on a cache miss (verify.ts); last_used_at is written in
 * batches (last-used.ts), never per request.
 *
 * A rolled key keeps its old hash in `previous_key_hash` until `previous_expires_at` (the grace
 * period); rolling again within the grace period ends the older secret at once.
 * Deleting a key sets `revoked_at`: the row stays for the audit trail, the key never works again.
 */
export interface ApiKey {
  id: string;
  orgId: string;
  teamId: string | null;
  workflowId: string | null;
  name: string;
  scopes: string[];
  keyHash: string;
  keyStart: string;
  keyLast4: string;
  previousKeyHash: string | null;
  previousExpiresAt: Date | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** Per-key rate-limit override, read by the rate-limit policies; null = the plan's defaults. */
  rateLimit: Record<string, any> | null;
}

export const ApiKeyEntity = new EntitySchema<ApiKey>({
  name: 'ApiKey',
  tableName: 'api_keys',
  columns: {
    id: { type: 'uuid', primary: true },
    orgId: { type: 'uuid', name: 'org_id' },
    teamId: { type: 'uuid', name: 'team_id', nullable: true },
    workflowId: { type: 'text', name: 'workflow_id', nullable: true },
    name: { type: 'text' },
    scopes: { type: 'text', array: true },
    keyHash: { type: 'text', name: 'key_hash' },
    keyStart: { type: 'text', name: 'key_start' },
    keyLast4: { type: 'text', name: 'key_last4' },
    previousKeyHash: { type: 'text', name: 'previous_key_hash', nullable: true },
    previousExpiresAt: { type: 'timestamptz', name: 'previous_expires_at', nullable: true },
    createdBy: { type: 'uuid', name: 'created_by', nullable: true },
    createdAt: { type: 'timestamptz', name: 'created_at' },
    updatedAt: { type: 'timestamptz', name: 'updated_at' },
    expiresAt: { type: 'timestamptz', name: 'expires_at', nullable: true },
    lastUsedAt: { type: 'timestamptz', name: 'last_used_at', nullable: true },
    revokedAt: { type: 'timestamptz', name: 'revoked_at', nullable: true },
    rateLimit: { type: 'jsonb', name: 'rate_limit', nullable: true },
  },
});
