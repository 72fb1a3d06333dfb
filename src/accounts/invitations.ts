import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { EntitySchema, IsNull, type DataSource } from 'typeorm';
import type { Actor, AuditLog } from '../audit/service.js';
import { AppError, errors, issuesDetails } from '../http/errors.js';
import { ROLES, type Role, type User } from './entities.js';
import { MIN_PASSWORD_LENGTH } from './passwords.js';
import { looksLikeEmail, normalizeEmail } from './email.js';
import { isUuid, type AccountsService, type Manager } from './service.js';
import { paginate, type Page, type PageRequest } from '../http/pagination.js';


export interface Invitation {
  id: string;
  orgId: string;
  email: string;
  role: Role;
  /** The team the new member joins; null: none. */
  teamId: string | null;
  tokenHash: string;
  invitedBy: string | null;
  createdAt: Date;
  expiresAt: Date;
  acceptedAt: Date | null;
}

export const InvitationEntity = new EntitySchema<Invitation>({
  name: 'Invitation',
  tableName: 'invitations',
  columns: {
    id: { type: 'uuid', primary: true },
    orgId: { type: 'uuid', name: 'org_id' },
    email: { type: 'text' },
    role: { type: 'text' },
    teamId: { type: 'uuid', name: 'team_id', nullable: true },
    tokenHash: { type: 'text', name: 'token_hash' },
    invitedBy: { type: 'uuid', name: 'invited_by', nullable: true },
    createdAt: { type: 'timestamptz', name: 'created_at' },
    expiresAt: { type: 'timestamptz', name: 'expires_at' },
    acceptedAt: { type: 'timestamptz', name: 'accepted_at', nullable: true },
  },
});

/** High-entropy token: a plain SHA-256 is enough (nothing to brute-force), looked up by equality. */
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Invitations: an owner or admin adds a member by email and gets a one-time link to hand over (no
 * mail server). The link sets the new user's password (or, for someone who already has an account,
 * asks for it), adds the membership, and cannot be used again. It expires after accounts.invitationTtlSeconds (7 days by default).
 */
export class InvitationsService {
  constructor(
    private readonly ds: DataSource,
    private readonly accounts: AccountsService,
    private readonly audit: AuditLog,
    /** config accounts.invitationTtlSeconds (7 days by default). */
    private readonly ttlSeconds: number,
  ) {}

  private get repo() {
    return this.ds.getRepository(InvitationEntity);
  }

  /** Returns the token for the link (shown once). `by` = the inviter (absent: CLI). */
  async invite(actor: Actor, orgId: string, input: { email: string; role: Role; teamId?: string | null }, by?: Manager): Promise<{ invitation: Invitation; token: string }> {
    if (by && by.role !== 'owner' && by.role !== 'admin') throw new AppError(403, 'FORBIDDEN', 'Only owners and admins can invite members');
    const email = normalizeEmail(input.email);
    if (!looksLikeEmail(email)) throw errors.validation('Enter a valid email address', 'email');
    if (!ROLES.includes(input.role)) throw errors.validation(`Role must be one of ${ROLES.join(', ')}`, 'role');
    if (input.role === 'owner' && by && by.role !== 'owner') throw new AppError(403, 'FORBIDDEN', 'Only an owner can invite another owner', issuesDetails([{ path: 'role', message: 'Only an owner can invite another owner' }]));
    await this.accounts.getOrganization(orgId);
    if (input.teamId) await this.accounts.getTeam(orgId, input.teamId);
    const existing = await this.accounts.findUserByEmail(email);
    if (existing && (await this.accounts.membership(orgId, existing.id))) throw errors.conflict(`${email} is already a member of this organization`, 'email');
    const token = randomBytes(32).toString('base64url');
    const now = new Date();
    const invitation: Invitation = {
      id: randomUUID(),
      orgId,
      email,
      role: input.role,
      teamId: input.teamId ?? null,
      tokenHash: hashToken(token),
      invitedBy: by?.userId ?? null,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.ttlSeconds * 1000),
      acceptedAt: null,
    };
    await this.ds.transaction(async (m) => {
      await m.getRepository(InvitationEntity).insert(invitation);
      await this.audit.record(actor, { orgId, action: 'member.invited', targetType: 'invitation', targetId: invitation.id, details: { email, role: input.role, team_id: invitation.teamId } }, m);
    });
    return { invitation, token };
  }

  /** Pending (not accepted, not expired) invitations of an organization, newest first. */
  async listPending(orgId: string): Promise<Invitation[]> {
    const rows = await this.repo.find({ where: { orgId, acceptedAt: IsNull() }, order: { createdAt: 'DESC', id: 'DESC' } });
    return rows.filter((r) => r.expiresAt.getTime() > Date.now());
  }

  /** One page of listPending(). */
  async pagePending(orgId: string, req: PageRequest): Promise<Page<Invitation>> {
    await this.accounts.getOrganization(orgId);
    return paginate('invitations', await this.listPending(orgId), req, (i) => [i.createdAt.toISOString(), i.id], { desc: true });
  }

  /** Withdraws a pending invitation: its link stops working at once. 404 for other organizations' ids. */
  async revoke(actor: Actor, orgId: string, id: string, by?: Manager): Promise<void> {
    if (by && by.role !== 'owner' && by.role !== 'admin') throw new AppError(403, 'FORBIDDEN', 'Only owners and admins can revoke invitations');
    const inv = isUuid(id) ? await this.repo.findOneBy({ id, orgId }) : null;
    if (!inv || inv.acceptedAt || inv.expiresAt.getTime() <= Date.now()) throw errors.notFound(`Invitation ${id} not found`);
    await this.ds.transaction(async (m) => {
      await m.getRepository(InvitationEntity).delete({ id });
      await this.audit.record(actor, { orgId, action: 'invitation.revoked', targetType: 'invitation', targetId: id, details: { email: inv.email, role: inv.role } }, m);
    });
  }

  /** The invitation a link points at, with whether its email already has an account; null when unusable. */
  async lookup(token: string): Promise<{ invitation: Invitation; orgName: string; existingUser: boolean } | null> {
    const inv = typeof token === 'string' && token.length >= 20 && token.length <= 100 ? await this.repo.findOneBy({ tokenHash: hashToken(token) }) : null;
    if (!inv || inv.acceptedAt || inv.expiresAt.getTime() <= Date.now()) return null;
    const org = await this.accounts.getOrganization(inv.orgId);
    const user = await this.accounts.findUserByEmail(inv.email);
    return { invitation: inv, orgName: org.name, existingUser: !!user?.passwordHash };
  }

  /**
   * Uses the link once: a new user sets a password; an existing user proves theirs. Adds the
   * membership (AccountsService.createUser writes member.added) and marks the link used.
   */
  async accept(token: string, password: string): Promise<User> {
    const found = await this.lookup(token);
    if (!found) throw new AppError(410, 'INVITATION_INVALID', 'This invitation link is not valid: it was already used, it expired, or it was mistyped. Ask for a new one.');
    const { invitation } = found;
    // Mark it used first, atomically: two concurrent submissions cannot both join.
    const res = await this.ds.query(`UPDATE invitations SET accepted_at = now() WHERE id = $1 AND accepted_at IS NULL RETURNING id`, [invitation.id]);
    if ((Array.isArray(res[0]) ? res[0] : res).length === 0) throw new AppError(410, 'INVITATION_INVALID', 'This invitation link was already used.');
    try {
      const actor: Actor = { type: 'user', id: null };
      if (found.existingUser) {
        const user = await this.accounts.authenticate(invitation.email, password);
        if (!user) throw errors.validation('The password is not correct for this account', 'password');
        await this.accounts.createUser({ ...actor, id: user.id }, { email: invitation.email, orgId: invitation.orgId, role: invitation.role, teamId: invitation.teamId ?? undefined });
        return user;
      }
      if (password.length < MIN_PASSWORD_LENGTH) throw errors.validation(`Password needs at least ${MIN_PASSWORD_LENGTH} characters`, 'password');
      const { user } = await this.accounts.createUser(actor, { email: invitation.email, password, orgId: invitation.orgId, role: invitation.role, teamId: invitation.teamId ?? undefined });
      return user;
    } catch (err) {
      await this.ds.query(`UPDATE invitations SET accepted_at = NULL WHERE id = $1`, [invitation.id]);
      throw err;
    }
  }
}
