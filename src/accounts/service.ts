import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { Config } from '../config/schema.js';
import { AppError, errors } from '../http/errors.js';
import type { Actor, AuditLog } from '../audit/service.js';
import {
  MembershipEntity,
  OrganizationEntity,
  ROLES,
  TeamEntity,
  UserEntity,
  type Membership,
  type Organization,
  type OrganizationSettings,
  type Role,
  type Team,
  type User,
} from './entities.js';
import { hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.js';
import { looksLikeEmail, normalizeEmail } from './email.js';
import { recordSignIn } from '../metrics/registry.js';
import { decodeCursor, DEFAULT_PAGE, encodeCursor, MAX_PAGE, type Page } from '../http/pagination.js';

/**
 * Who manages (the role rules of changeRole, removeMember, invitations, settings): the caller's role
 * in the organization and, for people, their user id. Absent = the operator's CLI.
 */
export interface Manager {
  role: Role;
  userId?: string | null;
}

export interface MembershipView {
  orgId: string;
  orgName: string;
  role: Role;
  teamId: string | null;
}

/** Organizations, teams, users and memberships. Called by the CLI, the JSON API and the pages. */
export class AccountsService {
  private readonly membershipListeners: ((orgId: string, userId: string) => Promise<void>)[] = [];
  private readonly organizationListeners: ((orgId: string) => Promise<void>)[] = [];

  constructor(
    private readonly ds: DataSource,
    private readonly config: Config,
    private readonly audit: AuditLog,
  ) {}

  /** Told after a member's role changed or the member left (committed): caches of what they hold drop it. */
  onMembershipChange(listener: (orgId: string, userId: string) => Promise<void>): void {
    this.membershipListeners.push(listener);
  }

  /** Told after an organization's settings changed (committed): caches that carry them drop them. */
  onOrganizationChange(listener: (orgId: string) => Promise<void>): void {
    this.organizationListeners.push(listener);
  }

  private async membershipChanged(orgId: string, userId: string): Promise<void> {
    for (const l of this.membershipListeners) await l(orgId, userId);
  }

  private get orgs() {
    return this.ds.getRepository(OrganizationEntity);
  }
  private get users() {
    return this.ds.getRepository(UserEntity);
  }
  private get memberships() {
    return this.ds.getRepository(MembershipEntity);
  }
  private get teams() {
    return this.ds.getRepository(TeamEntity);
  }

  async createOrganization(actor: Actor, input: { name: string; plan?: string }): Promise<Organization> {
    const name = input.name.trim();
    if (!name) throw errors.validation('Organization name is required', 'name');
    const plan = input.plan ?? 'free';
    if (!this.config.plans[plan]) {
      throw errors.validation(`Unknown plan "${plan}"`, 'plan');
    }
    return this.ds.transaction(async (m) => {
      const org: Organization = { id: randomUUID(), name, plan, settings: {}, createdAt: new Date() };
      await m.getRepository(OrganizationEntity).insert(org);
      await this.audit.record(actor, { orgId: org.id, action: 'organization.created', targetType: 'organization', targetId: org.id, details: { name, plan } }, m);
      return org;
    });
  }

  async getOrganization(id: string): Promise<Organization> {
    const org = isUuid(id) ? await this.orgs.findOneBy({ id }) : null;
    if (!org) throw errors.notFound(`Organization ${id} not found`);
    return org;
  }

  async listOrganizations(): Promise<Organization[]> {
    return this.orgs.find({ order: { createdAt: 'ASC' } });
  }

  async createTeam(actor: Actor, input: { orgId: string; name: string }): Promise<Team> {
    await this.getOrganization(input.orgId);
    const name = input.name.trim();
    if (!name) throw errors.validation('Team name is required', 'name');
    if (await this.teams.findOneBy({ orgId: input.orgId, name })) throw errors.conflict(`Team "${name}" already exists`);
    return this.ds.transaction(async (m) => {
      const team: Team = { id: randomUUID(), orgId: input.orgId, name, createdAt: new Date() };
      await m.getRepository(TeamEntity).insert(team);
      await this.audit.record(actor, { orgId: input.orgId, action: 'team.created', targetType: 'team', targetId: team.id, details: { name } }, m);
      return team;
    });
  }

  async getTeam(orgId: string, teamId: string): Promise<Team> {
    const team = isUuid(teamId) ? await this.teams.findOneBy({ id: teamId, orgId }) : null;
    if (!team) throw errors.validation(`Team ${teamId} does not exist in this organization`, 'team_id');
    return team;
  }

  async listTeams(orgId: string): Promise<Team[]> {
    return this.teams.find({ where: { orgId }, order: { name: 'ASC' } });
  }

  /** Teams with their member counts, oldest first (the API's list order). */
  async listTeamsWithCounts(orgId: string): Promise<(Team & { memberCount: number })[]> {
    await this.getOrganization(orgId);
    const rows: { id: string; orgId: string; name: string; createdAt: Date; memberCount: number }[] = await this.ds.query(
      `SELECT t.id, t.org_id AS "orgId", t.name, t.created_at AS "createdAt",
              (SELECT count(*)::int FROM memberships m WHERE m.team_id = t.id) AS "memberCount"
         FROM teams t WHERE t.org_id = $1 ORDER BY t.created_at, t.id`,
      [orgId],
    );
    return rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt) }));
  }

  /** The team, or 404 (other organizations' teams do not exist for the caller). */
  async findTeam(orgId: string, teamId: string): Promise<Team> {
    const team = isUuid(teamId) ? await this.teams.findOneBy({ id: teamId, orgId }) : null;
    if (!team) throw errors.notFound(`Team ${teamId} not found`);
    return team;
  }

  async renameTeam(actor: Actor, orgId: string, teamId: string, name: string): Promise<Team> {
    const team = await this.findTeam(orgId, teamId);
    const next = name.trim();
    if (!next) throw errors.validation('Team name is required', 'name');
    if (next === team.name) return team;
    if (await this.teams.findOneBy({ orgId, name: next })) throw errors.conflict(`Team "${next}" already exists`, 'name');
    await this.ds.transaction(async (m) => {
      await m.getRepository(TeamEntity).update({ id: teamId }, { name: next });
      await this.audit.record(actor, { orgId, action: 'team.updated', targetType: 'team', targetId: teamId, details: { name: { from: team.name, to: next } } }, m);
    });
    return { ...team, name: next };
  }

  /**
   * Deletes a team: its members stay in the organization without a team, pending invitations to it
   * invite to no team. Keys restricted to the team are the caller's business first (see
   * src/accounts/teams.ts): a key must never outlive its restriction.
   */
  async deleteTeam(actor: Actor, orgId: string, teamId: string, details: Record<string, unknown> = {}): Promise<void> {
    const team = await this.findTeam(orgId, teamId);
    const members: { userId: string }[] = await this.ds.query(`SELECT user_id AS "userId" FROM memberships WHERE team_id = $1`, [teamId]);
    await this.ds.transaction(async (m) => {
      await m.query(`UPDATE memberships SET team_id = NULL WHERE team_id = $1`, [teamId]);
      await m.query(`UPDATE invitations SET team_id = NULL WHERE team_id = $1`, [teamId]);
      await m.getRepository(TeamEntity).delete({ id: teamId });
      await this.audit.record(actor, { orgId, action: 'team.deleted', targetType: 'team', targetId: teamId, details: { name: team.name, members: members.length, ...details } }, m);
    });
    for (const mb of members) await this.membershipChanged(orgId, mb.userId);
  }

  /** Creates the user if the email is new, then adds the membership. */
  async createUser(
    actor: Actor,
    input: { email: string; password?: string; name?: string; orgId: string; role?: Role; teamId?: string },
  ): Promise<{ user: User; membership: Membership }> {
    const email = normalizeEmail(input.email);
    if (!looksLikeEmail(email)) throw errors.validation('A valid email is required', 'email');
    const role = input.role ?? 'member';
    if (!ROLES.includes(role)) throw errors.validation(`Role must be one of ${ROLES.join(', ')}`, 'role');
    if (input.password !== undefined && input.password.length < MIN_PASSWORD_LENGTH) {
      throw errors.validation(`Password needs at least ${MIN_PASSWORD_LENGTH} characters`, 'password');
    }
    await this.getOrganization(input.orgId);
    if (input.teamId) await this.getTeam(input.orgId, input.teamId);
    const passwordHash = input.password ? await hashPassword(input.password) : null;
    return this.ds.transaction(async (m) => {
      const users = m.getRepository(UserEntity);
      let user = await users.createQueryBuilder('u').where('lower(u.email) = :email', { email }).getOne();
      if (!user) {
        user = { id: randomUUID(), email, name: input.name ?? null, passwordHash, createdAt: new Date() };
        await users.insert(user);
      } else if (passwordHash && !user.passwordHash) {
        await users.update({ id: user.id }, { passwordHash });
      }
      const existing = await m.getRepository(MembershipEntity).findOneBy({ orgId: input.orgId, userId: user.id });
      if (existing) throw errors.conflict(`${email} is already a member of this organization`);
      const membership: Membership = { id: randomUUID(), orgId: input.orgId, userId: user.id, role, teamId: input.teamId ?? null, createdAt: new Date() };
      await m.getRepository(MembershipEntity).insert(membership);
      await this.audit.record(actor, { orgId: input.orgId, action: 'member.added', targetType: 'user', targetId: user.id, details: { email, role } }, m);
      return { user, membership };
    });
  }

  async findUserByEmail(email: string): Promise<User | null> {
    return this.users.createQueryBuilder('u').where('lower(u.email) = :email', { email: normalizeEmail(email) }).getOne();
  }

  async getUser(id: string): Promise<User | null> {
    return isUuid(id) ? this.users.findOneBy({ id }) : null;
  }

  /** Returns the user when the password matches; null otherwise (same timing for unknown emails). */
  async authenticate(email: string, password: string): Promise<User | null> {
    const user = await this.findUserByEmail(email);
    const ok = await verifyPassword(password, user?.passwordHash ?? null);
    recordSignIn(ok && !!user);
    return ok && user ? user : null;
  }

  async membershipsOf(userId: string): Promise<MembershipView[]> {
    const rows: MembershipView[] = await this.ds.query(
      `SELECT m.org_id AS "orgId", o.name AS "orgName", m.role, m.team_id AS "teamId"
         FROM memberships m JOIN organizations o ON o.id = m.org_id
        WHERE m.user_id = $1 ORDER BY o.name`,
      [userId],
    );
    return rows;
  }

  async membership(orgId: string, userId: string): Promise<Membership | null> {
    if (!isUuid(orgId) || !isUuid(userId)) return null;
    return this.memberships.findOneBy({ orgId, userId });
  }

  /** Members of an organization with their email, oldest first (the Members page, created-by names). */
  async listMembers(orgId: string): Promise<MemberView[]> {
    await this.getOrganization(orgId);
    return this.ds.query(
      `SELECT m.user_id AS "userId", u.email, u.name, m.role, m.team_id AS "teamId", m.created_at AS "createdAt"
         FROM memberships m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 ORDER BY m.created_at, u.email`,
      [orgId],
    );
  }

  /** One page of the organization's members, oldest first, filtered by role and team. */
  async pageMembers(orgId: string, req: { cursor?: string; limit?: number; role?: Role; team_id?: string }): Promise<Page<MemberView>> {
    await this.getOrganization(orgId);
    const limit = Math.min(Math.max(req.limit ?? DEFAULT_PAGE, 1), MAX_PAGE);
    const after = req.cursor ? decodeCursor('members', req.cursor, 2) : undefined;
    if (req.team_id !== undefined && !isUuid(req.team_id)) return { items: [], nextCursor: null };
    const rows: MemberView[] = await this.ds.query(
      `SELECT m.user_id AS "userId", u.email, u.name, m.role, m.team_id AS "teamId", m.created_at AS "createdAt", m.id AS "membershipId"
         FROM memberships m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 AND ($2::text IS NULL OR m.role = $2) AND ($3::uuid IS NULL OR m.team_id = $3)
          AND ($4::timestamptz IS NULL OR (date_trunc('milliseconds', m.created_at), m.id) > ($4::timestamptz, $5::uuid))
        ORDER BY date_trunc('milliseconds', m.created_at), m.id LIMIT $6`,
      [orgId, req.role ?? null, req.team_id ?? null, after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    const items = rows.slice(0, limit);
    const last = items[items.length - 1] as (MemberView & { membershipId: string }) | undefined;
    return {
      items: items.map(({ membershipId: _m, ...v }: MemberView & { membershipId?: string }) => ({ ...v, createdAt: new Date(v.createdAt) })),
      nextCursor: rows.length > limit && last ? encodeCursor('members', [new Date(last.createdAt).toISOString(), last.membershipId]) : null,
    };
  }

  /** One member of the organization with their email, or 404. */
  async getMember(orgId: string, userId: string): Promise<MemberView> {
    if (!isUuid(orgId) || !isUuid(userId)) throw errors.notFound('Member not found');
    const [row]: MemberView[] = await this.ds.query(
      `SELECT m.user_id AS "userId", u.email, u.name, m.role, m.team_id AS "teamId", m.created_at AS "createdAt"
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2`,
      [orgId, userId],
    );
    if (!row) throw errors.notFound('Member not found');
    return { ...row, createdAt: new Date(row.createdAt) };
  }

  /** Moves a member to a team of the organization, or out of any team (null). Same rules as changeRole. */
  async changeTeam(actor: Actor, orgId: string, userId: string, teamId: string | null, by?: Manager): Promise<Membership> {
    if (teamId !== null) await this.getTeam(orgId, teamId);
    const changed = await this.ds.transaction(async (m) => {
      const target = await this.lockMembers(m, orgId, userId);
      assertManager(by, target.role, target.role);
      if (target.teamId === teamId) return target;
      await m.getRepository(MembershipEntity).update({ id: target.id }, { teamId });
      await this.audit.record(actor, { orgId, action: 'member.team_changed', targetType: 'user', targetId: userId, details: { from: target.teamId, to: teamId } }, m);
      return { ...target, teamId };
    });
    await this.membershipChanged(orgId, userId);
    return changed;
  }

  /**
   * Changes a member's role. Owners and admins may change roles; only an owner may grant or take
   * away the owner role; the last owner cannot be demoted. `by` absent = the operator's CLI.
   */
  async changeRole(actor: Actor, orgId: string, userId: string, role: Role, by?: Manager): Promise<Membership> {
    if (!ROLES.includes(role)) throw errors.validation(`Role must be one of ${ROLES.join(', ')}`, 'role');
    const changed = await this.ds.transaction(async (m) => {
      const target = await this.lockMembers(m, orgId, userId);
      assertManager(by, target.role, role);
      if (target.role === role) return target;
      if (target.role === 'owner') await this.assertNotLastOwner(m, orgId, 'demote');
      await m.getRepository(MembershipEntity).update({ id: target.id }, { role });
      await this.audit.record(actor, { orgId, action: 'member.role_changed', targetType: 'user', targetId: userId, details: { from: target.role, to: role } }, m);
      return { ...target, role };
    });
    await this.membershipChanged(orgId, userId);
    return changed;
  }

  /** Removes a member (same rules as changeRole; the last owner cannot be removed). */
  async removeMember(actor: Actor, orgId: string, userId: string, by?: Manager): Promise<void> {
    await this.ds.transaction(async (m) => {
      const target = await this.lockMembers(m, orgId, userId);
      assertManager(by, target.role, target.role);
      if (target.role === 'owner') await this.assertNotLastOwner(m, orgId, 'remove');
      await m.getRepository(MembershipEntity).delete({ id: target.id });
      await this.audit.record(actor, { orgId, action: 'member.removed', targetType: 'user', targetId: userId, details: { role: target.role } }, m);
    });
    await this.membershipChanged(orgId, userId);
  }

  /** Renames the organization and/or changes its settings (owners and admins; checked by the caller's membership). */
  async updateOrganization(actor: Actor, orgId: string, patch: { name?: string; settings?: Partial<OrganizationSettings> }, by?: Manager): Promise<Organization> {
    if (by && by.role !== 'owner' && by.role !== 'admin') throw new AppError(403, 'FORBIDDEN', 'Only owners and admins can change organization settings');
    const org = await this.getOrganization(orgId);
    const next: Organization = { ...org, settings: { ...org.settings, ...patch.settings } };
    if (patch.name !== undefined) {
      const name = patch.name.trim();
      if (!name) throw errors.validation('Organization name is required', 'name');
      if (name.length > 200) throw errors.validation('Organization name is at most 200 characters', 'name');
      next.name = name;
    }
    await this.ds.transaction(async (m) => {
      await m.getRepository(OrganizationEntity).update({ id: orgId }, { name: next.name, settings: next.settings });
      await this.audit.record(actor, { orgId, action: 'organization.updated', targetType: 'organization', targetId: orgId, details: { ...(patch.name !== undefined && { name: next.name }), ...(patch.settings && { settings: patch.settings }) } }, m);
    });
    for (const l of this.organizationListeners) await l(orgId);
    return next;
  }

  /** Locks the organization's memberships (two concurrent demotions cannot both pass the last-owner check). */
  private async lockMembers(m: EntityManager, orgId: string, userId: string): Promise<Membership> {
    if (!isUuid(orgId) || !isUuid(userId)) throw errors.notFound('Member not found');
    await m.query('SELECT id FROM memberships WHERE org_id = $1 FOR UPDATE', [orgId]);
    const target = await m.getRepository(MembershipEntity).findOneBy({ orgId, userId });
    if (!target) throw errors.notFound('Member not found');
    return target;
  }

  private async assertNotLastOwner(m: EntityManager, orgId: string, what: 'demote' | 'remove'): Promise<void> {
    const owners = await m.getRepository(MembershipEntity).countBy({ orgId, role: 'owner' });
    if (owners <= 1) {
      throw new AppError(409, 'LAST_OWNER', `The last owner cannot be ${what === 'remove' ? 'removed' : 'demoted'}. Make another member an owner first.`);
    }
  }

  async requireMembership(orgId: string, userId: string): Promise<Membership> {
    const m = await this.membership(orgId, userId);
    if (!m) throw new AppError(403, 'FORBIDDEN', 'You are not a member of this organization');
    return m;
  }
}

export interface MemberView {
  userId: string;
  email: string;
  name: string | null;
  role: Role;
  teamId: string | null;
  createdAt: Date;
}

/** Owners and admins manage members; only owners touch the owner role (grant, demote, remove). */
function assertManager(by: Manager | undefined, currentRole: Role, newRole: Role): void {
  if (!by) return;
  if (by.role !== 'owner' && by.role !== 'admin') throw new AppError(403, 'FORBIDDEN', 'Only owners and admins can manage members');
  if ((currentRole === 'owner' || newRole === 'owner') && by.role !== 'owner') throw new AppError(403, 'FORBIDDEN', 'Only an owner can grant or take away the owner role');
}

export function isUuid(v: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
}
