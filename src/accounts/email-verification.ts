import type { DataSource } from 'typeorm';
import type { Actor, AuditLog } from '../audit/service.js';
import { errors } from '../http/errors.js';
import { normalizeEmail } from './email.js';
import { returning } from '../storage/returning.js';

/**
 * Marks a user's address as verified: `email_verified: true` in ID tokens and userinfo (OIDC Core
 * §5.1) from then on. Relying parties may link accounts by a verified address, so only a trusted
 * path sets it: Flowgate sends no mail and cannot prove control of an address itself; an operator
 * who verified it out of band runs `flowgate users verify-email --email E`.
 */
export async function markEmailVerified(ds: DataSource, audit: AuditLog, actor: Actor, email: string): Promise<{ id: string; email: string; verifiedAt: Date }> {
  return ds.transaction(async (m) => {
    const rows = returning<{ id: string; email: string; email_verified_at: Date }>(await m.query(
      `UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()) WHERE lower(email) = $1 RETURNING id, email, email_verified_at`,
      [normalizeEmail(email)],
    ));
    const user = rows[0];
    if (!user) throw errors.notFound(`No user with the address ${normalizeEmail(email)}`);
    await audit.record(actor, { orgId: null, action: 'user.email_verified', targetType: 'user', targetId: user.id }, m);
    return { id: user.id, email: user.email, verifiedAt: new Date(user.email_verified_at) };
  });
}
