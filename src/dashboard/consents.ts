import type { DataSource } from 'typeorm';
import type { Actor, AuditLog } from '../audit/service.js';
import { errors } from '../http/errors.js';
import { OAuthConsentEntity } from '../oauth/entities.js';
import type { Provider } from '../oauth/provider.js';
import type { KeyValueStore } from '../storage/kv.js';
import { CREDENTIALS_REVOKED } from '../introspection/answer-cache.js';

export interface AuthorizedAppView {
  grantId: string;
  clientId: string;
  clientName: string;
  orgId: string;
  orgName: string;
  scopes: string[];
  createdAt: Date;
}

/**
 * "Authorized Apps": the grants a user gave to OAuth clients (oauth_consents rows), and ending one.
 * Revoking destroys the provider's Grant and every token and code issued from it (as oidc-provider's
 * own revocation helper does), so refresh tokens stop at once and opaque access tokens introspect
 * inactive. JWT access tokens carry no grant link and stay valid until they expire (minutes).
 */
export class ConsentsService {
  constructor(
    private readonly ds: DataSource,
    private readonly provider: Provider,
    private readonly audit: AuditLog,
    private readonly kv: KeyValueStore,
  ) {}

  async listForUser(userId: string): Promise<AuthorizedAppView[]> {
    const rows: Array<Omit<AuthorizedAppView, 'scopes'> & { scope: string }> = await this.ds.query(
      `SELECT c.grant_id AS "grantId", c.client_id AS "clientId", COALESCE(cl.name, c.client_id) AS "clientName",
              c.org_id AS "orgId", o.name AS "orgName", c.scope, c.created_at AS "createdAt"
         FROM oauth_consents c
         LEFT JOIN oauth_clients cl ON cl.client_id = c.client_id
         JOIN organizations o ON o.id = c.org_id
        WHERE c.user_id = $1 AND c.revoked_at IS NULL
        ORDER BY c.created_at DESC`,
      [userId],
    );
    return rows.map(({ scope, ...r }) => ({ ...r, scopes: scope.split(' ').filter(Boolean) }));
  }

  /** Ends one of the user's grants. Only the user who consented may revoke it (404 otherwise). */
  async revoke(actor: Actor, userId: string, grantId: string): Promise<void> {
    const repo = this.ds.getRepository(OAuthConsentEntity);
    const consent = typeof grantId === 'string' && grantId.length <= 200 ? await repo.findOneBy({ grantId }) : null;
    if (!consent || consent.userId !== userId || consent.revokedAt) throw errors.notFound('Authorized app not found');
    const p = this.provider;
    await Promise.all([p.AccessToken, p.RefreshToken, p.AuthorizationCode].map((model) => model.revokeByGrantId(grantId)));
    const grant = await p.Grant.find(grantId);
    if (grant) await grant.destroy();
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthConsentEntity).update({ grantId }, { revokedAt: new Date() });
      await this.audit.record(actor, { orgId: consent.orgId, action: 'consent.revoked', targetType: 'oauth_client', targetId: consent.clientId, details: { grant_id: grantId, scope: consent.scope } }, m);
    });
    // Cached introspection answers for this grant's tokens must go on every instance.
    await this.kv.publish(CREDENTIALS_REVOKED, 'consent').catch(() => {});
  }
}
