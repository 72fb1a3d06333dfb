import type { DataSource, EntityManager } from 'typeorm';
import { returning } from '../returning.js';

/**
 * The raw SQL of the api_keys table, in one place (typed CRUD goes through the ApiKey entity in
 * apikeys/service.ts; the hot path's look-up is in ./api-key-verification.ts).
 */

type Db = DataSource | EntityManager;

/** Keys of an organization that count against its plan's cap: live and not expired. */
export async function countActiveKeys(db: Db, orgId: string): Promise<number> {
  const [{ n }] = await db.query(`SELECT count(*)::int AS n FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, [orgId]);
  return n;
}

/**
 * Moves keys' `last_used_at` forward to the given times, but only where it is at least `intervalMs`
 * older: a busy key's row is rewritten at most once per interval, whichever instance flushes.
 */
export async function recordLastUses(db: Db, ids: string[], times: string[], intervalMs: number): Promise<void> {
  await db.query(
    `UPDATE api_keys k SET last_used_at = v.t
       FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, t)
      WHERE k.id = v.id
        AND (k.last_used_at IS NULL OR k.last_used_at <= v.t - make_interval(secs => $3::double precision / 1000))`,
    [ids, times, intervalMs],
  );
}

/** Revokes the live key a secret belongs to (its current secret, or its previous one still in grace). */
export async function revokeKeysBySecretHash(db: Db, hash: string): Promise<{ id: string; org_id: string; name: string }[]> {
  const res = await db.query(
    `UPDATE api_keys SET revoked_at = now(), previous_key_hash = NULL, previous_expires_at = NULL, updated_at = now()
      WHERE revoked_at IS NULL AND (key_hash = $1 OR (previous_key_hash = $1 AND previous_expires_at > now()))
      RETURNING id, org_id, name`,
    [hash],
  );
  return returning<{ id: string; org_id: string; name: string }>(res);
}

export interface ExpiryNotice {
  id: string;
  org_id: string;
  name: string;
  expires_at: Date;
  kind: 'expired' | 'expiring_1d' | 'expiring_7d';
  days: number | null;
}

/**
 * Live keys owed an expiry notice (7 d and 1 d before `expires_at`, and at it) that none was sent
 * for; a key first seen inside the 1-day window is owed only the 1-day notice.
 */
export async function dueExpiryNotices(db: Db, now: Date, limit = 500): Promise<ExpiryNotice[]> {
  return db.query(
    `SELECT k.id, k.org_id, k.name, k.expires_at, n.kind, n.days
       FROM api_keys k
       CROSS JOIN LATERAL (
         SELECT 'expired' AS kind, NULL::int AS days WHERE k.expires_at <= $1
         UNION ALL
         SELECT * FROM (SELECT 'expiring_1d', 1 WHERE k.expires_at > $1 AND k.expires_at <= $1::timestamptz + interval '1 day') a
         UNION ALL
         SELECT * FROM (SELECT 'expiring_7d', 7 WHERE k.expires_at > $1::timestamptz + interval '1 day' AND k.expires_at <= $1::timestamptz + interval '7 days') b
       ) n
      WHERE k.revoked_at IS NULL AND k.expires_at IS NOT NULL AND k.expires_at > $1::timestamptz - interval '1 day'
        AND NOT EXISTS (SELECT 1 FROM api_key_expiry_notices x WHERE x.key_id = k.id AND x.kind = n.kind)
      LIMIT $2`,
    [now, limit],
  );
}

/** Claims one notice for one key: true for exactly one caller, whichever instance asks. */
export async function claimExpiryNotice(db: Db, keyId: string, kind: string): Promise<boolean> {
  const won = await db.query(`INSERT INTO api_key_expiry_notices (key_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING key_id`, [keyId, kind]);
  return returning(won).length > 0;
}

/** A key's own rate-limit overrides (null: none, or no such key). */
export async function keyRateLimit(db: Db, id: string): Promise<unknown> {
  const rows: { rate_limit: unknown }[] = await db.query(`SELECT rate_limit FROM api_keys WHERE id = $1`, [id]);
  return rows[0]?.rate_limit ?? null;
}

/** Stores a key's rate-limit overrides (null removes them). */
export async function setKeyRateLimit(db: Db, id: string, limits: Record<string, unknown> | null): Promise<void> {
  await db.query(`UPDATE api_keys SET rate_limit = $2::jsonb WHERE id = $1`, [id, limits === null ? null : JSON.stringify(limits)]);
}

/** Whether `id` names a live key of the organization (any text: a malformed id is simply not one). */
export async function isLiveKeyOf(db: Db, id: string, orgId: string): Promise<boolean> {
  const rows: unknown[] = await db.query(`SELECT 1 FROM api_keys WHERE id::text = $1 AND org_id = $2 AND revoked_at IS NULL`, [id, orgId]);
  return rows.length > 0;
}
