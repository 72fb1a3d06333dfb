import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
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
  type Role,
  type Team,
  type User,
} from './entities.js';
import { hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.js';

export interface MembershipView {
  orgId: string;
  orgName: string;
  role: Role;
  teamId: string | null;
}

/** Organizations, teams, users and memberships. Called by the CLI, the JSON API and the pages. */
export class AccountsService {
  constructor(
    private readonly ds: DataSource,
    private readonly config: Config,
    private readonly audit: AuditLog,
  ) {}

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
    if (!name) throw errors.validation('Organization name is required', { field: 'name' });
    const plan = input.plan ?? 'free';
    if (!this.config.plans[plan]) {
      throw errors.validation(`Unknown plan "${plan}"`, { field: 'plan', allowed: Object.keys(this.config.plans) });
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
    if (!name) throw errors.validation('Team name is required', { field: 'name' });
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
    if (!team) throw errors.validation(`Team ${teamId} does not exist in this organization`, { field: 'team_id' });
    return team;
  }

  async listTeams(orgId: string): Promise<Team[]> {
    return this.teams.find({ where: { orgId }, order: { name: 'ASC' } });
  }

  /** Creates the user if the email is new, then adds the membership. */
  async createUser(
    actor: Actor,
    input: { email: string; password?: string; name?: string; orgId: string; role?: Role; teamId?: string },
  ): Promise<{ user: User; membership: Membership }> {
    const email = input.email.trim().toLowerCase();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw errors.validation('A valid email is required', { field: 'email' });
    const role = input.role ?? 'member';
    if (!ROLES.includes(role)) throw errors.validation(`Role must be one of ${ROLES.join(', ')}`, { field: 'role' });
    if (input.password !== undefined && input.password.length < MIN_PASSWORD_LENGTH) {
      throw errors.validation(`Password needs at least ${MIN_PASSWORD_LENGTH} characters`, { field: 'password' });
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
    return this.users.createQueryBuilder('u').where('lower(u.email) = :email', { email: email.trim().toLowerCase() }).getOne();
  }

  async getUser(id: string): Promise<User | null> {
    return isUuid(id) ? this.users.findOneBy({ id }) : null;
  }

  /** Returns the user when the password matches; null otherwise (same timing for unknown emails). */
  async authenticate(email: string, password: string): Promise<User | null> {
    const user = await this.findUserByEmail(email);
    const ok = await verifyPassword(password, user?.passwordHash ?? null);
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

  async requireMembership(orgId: string, userId: string): Promise<Membership> {
    const m = await this.membership(orgId, userId);
    if (!m) throw new AppError(403, 'FORBIDDEN', 'You are not a member of this organization');
    return m;
  }
}

export function isUuid(v: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
}
