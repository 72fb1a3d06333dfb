import type { DataSource } from 'typeorm';
import { SYSTEM_ACTOR, type AuditLog } from '../audit/service.js';
import { claimExpiryNotice, dueExpiryNotices } from '../storage/queries/api-keys.js';

/**
 * Records `api_key.expiring` (7 d and 1 d before `expires_at`) and `api_key.expired` for live keys.
 * Exactly once per key and notice across instances: the notice row is inserted with
 * ON CONFLICT DO NOTHING in the same transaction as the event, so only one instance wins it.
 * A key first seen already inside the 1-day window gets only the 1-day notice.
 */
export async function scanApiKeyExpiry(ds: DataSource, audit: AuditLog, now = new Date()): Promise<number> {
  let sent = 0;
  const due = await dueExpiryNotices(ds, now);
  for (const k of due) {
    await ds.transaction(async (m) => {
      if (!(await claimExpiryNotice(m, k.id, k.kind))) return;
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
