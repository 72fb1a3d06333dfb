import { IsNull, type DataSource } from 'typeorm';
import type { Actor, AuditLog } from '../audit/service.js';
import { errors } from '../http/errors.js';
import { OAuthConsentEntity } from './entities.js';
import type { Provider } from './provider.js';
import { grantTag } from './grant-tag.js';
import { tags, type Invalidation } from '../storage/invalidation.js';

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
 * "Authorized Apps": the grants users gave to OAuth clients (oauth_consents rows), and ending them.
 * Ending a grant destroys the provider's Grant and every token and code issued from it (as
 * oidc-provider's own revocation helper does): refresh tokens stop at once, opaque access tokens are
 * deleted, JWT access tokens are denied by the grant's tag, and every instance drops what it cached.
 * A user ends their own; removing a member ends theirs in that organization; deleting a client ends
 * all of its.
 */
export class ConsentsService {
  constructor(
    private readonly ds: DataSource,
    private readonly provider: Provider,
    private readonly audit: AuditLog,
    private readonly invalidation: Invalidation,
  ) {}

  private get repo() {
    return this.ds.getRepository(OAuthConsentEntity);
  }

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
    const consent = typeof grantId === 'string' && grantId.length <= 200 ? await this.repo.findOneBy({ grantId }) : null;
    if (!consent || consent.userId !== userId || consent.revokedAt) throw errors.notFound('Authorized app not found');
    await this.end(actor, consent, 'consent.revoked');
  }

  /** A member left the organization: every grant they gave for it ends. */
  async endForMember(actor: Actor, orgId: string, userId: string): Promise<number> {
    const consents = await this.repo.findBy({ orgId, userId, revokedAt: IsNull() });
    for (const c of consents) await this.end(actor, c, 'consent.revoked');
    return consents.length;
  }

  /** A client was deleted: every grant given to it ends. */
  async endForClient(actor: Actor, clientId: string): Promise<number> {
    const consents = await this.repo.findBy({ clientId, revokedAt: IsNull() });
    for (const c of consents) await this.end(actor, c, 'consent.revoked');
    return consents.length;
  }

  /** The user consented: the grant is recorded (and audited) as acting for the organization they chose. */
  async record(actor: Actor, c: { grantId: string; userId: string; clientId: string; orgId: string; scope: string }): Promise<void> {
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthConsentEntity).upsert({ ...c, revokedAt: null }, ['grantId']);
      await this.audit.record(actor, { orgId: c.orgId, action: 'consent.granted', targetType: 'oauth_client', targetId: c.clientId, details: { scope: c.scope, grant_id: c.grantId } }, m);
    });
  }

  /** The organization a grant acts for. */
  async orgOf(grantId: string): Promise<string | null> {
    return (await this.repo.findOneBy({ grantId }))?.orgId ?? null;
  }

  /** A grant the provider revoked itself (refresh-token reuse): mark its consent ended; returns it. */
  async markRevoked(grantId: string): Promise<{ orgId: string; userId: string } | null> {
    const consent = await this.repo.findOneBy({ grantId });
    await this.repo.update({ grantId }, { revokedAt: new Date() });
    return consent;
  }

  private async end(actor: Actor, consent: { grantId: string; orgId: string; clientId: string; scope: string }, action: string): Promise<void> {
    const { grantId } = consent;
    const p = this.provider;
    await Promise.all([p.AccessToken, p.RefreshToken, p.AuthorizationCode].map((model) => model.revokeByGrantId(grantId)));
    const grant = await p.Grant.find(grantId);
    if (grant) await grant.destroy();
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthConsentEntity).update({ grantId }, { revokedAt: new Date() });
      await this.audit.record(actor, { orgId: consent.orgId, action, targetType: 'oauth_client', targetId: consent.clientId, details: { grant_id: grantId, scope: consent.scope } }, m);
    });
    await this.invalidation.publish(tags.grant(grantTag(grantId)));
  }

  /** The grants a member gave apps for one organization (what owners and admins see for that member). */
  async listForMember(orgId: string, userId: string): Promise<AuthorizedAppView[]> {
    return (await this.listForUser(userId)).filter((a) => a.orgId === orgId);
  }

  /**
   * An owner or admin ends one of a member's grants in their organization (404 for grants of other
   * organizations or users); the same revocation as the member's own, audited with the admin as actor.
   */
  async revokeForMember(actor: Actor, orgId: string, userId: string, grantId: string): Promise<void> {
    const consent = typeof grantId === 'string' && grantId.length <= 200 ? await this.ds.getRepository(OAuthConsentEntity).findOneBy({ grantId }) : null;
    if (!consent || consent.orgId !== orgId || consent.userId !== userId || consent.revokedAt) throw errors.notFound('Grant not found');
    await this.revoke(actor, userId, grantId);
  }
}
