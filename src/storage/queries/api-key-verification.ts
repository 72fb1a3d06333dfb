import type { DataSource } from 'typeorm';

/**
 * What verifying an API key needs, in one query: the key, its organization's plan and settings
 * (query-string keys allowed, rate-limit overrides) and its creator's current role. The hot path asks
 * this only on a cache miss; a key is found by either of its hashes (current, or previous in grace).
 */
export interface ApiKeyVerificationRow {
  id: string;
  org_id: string;
  team_id: string | null;
  workflow_id: string | null;
  name: string;
  scopes: string[];
  key_hash: string;
  previous_key_hash: string | null;
  previous_expires_at: Date | null;
  created_by: string | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  rate_limit: Record<string, unknown> | null;
  org_plan: string;
  org_limits: Record<string, unknown> | null;
  allow_query: boolean | null;
  /** The creator's role in the key's organization now (owner, admin, member), null when not a member. */
  creator_role: string | null;
}

const SELECT = `SELECT k.id, k.org_id, k.team_id, k.workflow_id, k.name, k.scopes, k.key_hash, k.previous_key_hash,
       k.previous_expires_at, k.created_by, k.expires_at, k.revoked_at, k.rate_limit,
       o.plan AS org_plan, o.settings->'rateLimits' AS org_limits,
       (o.settings->>'allowQueryApiKey')::boolean AS allow_query, m.role AS creator_role
  FROM api_keys k
  JOIN organizations o ON o.id = k.org_id
  LEFT JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.created_by`;

/**
 * The keys several presented secrets belong to, in one statement (each hash found through its unique
 * index, current or previous). Several look-ups share one round trip and one plan.
 */
export async function apiKeysByHashes(ds: DataSource, hashes: readonly string[]): Promise<ApiKeyVerificationRow[]> {
  return ds.query(`${SELECT} WHERE k.key_hash = ANY($1::text[]) OR k.previous_key_hash = ANY($1::text[])`, [hashes]);
}

export async function apiKeyById(ds: DataSource, id: string): Promise<ApiKeyVerificationRow | null> {
  const rows: ApiKeyVerificationRow[] = await ds.query(`${SELECT} WHERE k.id = $1`, [id]);
  return rows[0] ?? null;
}
