import type { DataSource } from 'typeorm';
import { SYSTEM_ACTOR, type AuditLog } from '../audit/service.js';

/**
 * Records `api_key.expiring` (7 d and 1 d before `expires_at`) and `api_key.expired` for live keys.
 * Exactly once per key and notice across instances: the notice row is inserted with
 * ON CONFLICT DO NOTHING in the same transaction as the event, so only one instance wins it.
 * A key first seen already inside the 1-day window gets only the 1-day notice.
 */
export async function scanApiKeyExpiry(ds: DataSource, audit: AuditLog, now = new Date()): Promise<number> {
  let sent = 0;
  const due: Array<{ id: string; org_id: string; name: string; expires_at: Date; kind: string; days: number | null }> = await ds.query(
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
      LIMIT 500`,
    [now],
  );
  for (const k of due) {
    await ds.transaction(async (m) => {
      const won = await m.query(`INSERT INTO api_key_expiry_notices (key_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING key_id`, [k.id, k.kind]);
      if (won.length === 0) return;
      const expiresAt = new Date(k.expires_at).toISOString();
      await audit.record(
        SYSTEM_ACTOR,
        k.kind === 'expired'
          ? { orgId: k.org_id, action: 'api_key.expired', targetType: 'api_key', targetId: k.id, details: { name: k.name, expires_at: expiresAt } }
          : { orgId: k.org_id, action: 'api_key.expiring', targetType: 'api_key', targetId: k.id, details: { name: k.name, expires_at: expiresAt, days_left: k.days } },
        m,
      );
      sent += 1;
    });
  }
  return sent;
}
