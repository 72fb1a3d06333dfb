import { EntitySchema } from 'typeorm';

// All of these are the store of record: PostgreSQL.

export type Role = 'owner' | 'admin' | 'member';
export const ROLES: readonly Role[] = ['owner', 'admin', 'member'];

export interface Organization {
  id: string;
  name: string;
  plan: string;
  settings: OrganizationSettings;
  createdAt: Date;
}

export interface OrganizationSettings {
  allowQueryApiKey?: boolean;
}

export interface Team {
  id: string;
  orgId: string;
  name: string;
  createdAt: Date;
}

export interface User {
  id: string;
  email: string;
  name: string | null;
  passwordHash: string | null;
  /** When the address owner proved control of the address (OIDC `email_verified`); null until then. */
  emailVerifiedAt?: Date | null;
  createdAt: Date;
}

export interface Membership {
  id: string;
  orgId: string;
  userId: string;
  role: Role;
  teamId: string | null;
  createdAt: Date;
}

const createdAt = { type: 'timestamptz' as const, name: 'created_at', createDate: true };

export const OrganizationEntity = new EntitySchema<Organization>({
  name: 'Organization',
  tableName: 'organizations',
  columns: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    plan: { type: 'text' },
    settings: { type: 'jsonb' },
    createdAt,
  },
});

export const TeamEntity = new EntitySchema<Team>({
  name: 'Team',
  tableName: 'teams',
  columns: {
    id: { type: 'uuid', primary: true },
    orgId: { type: 'uuid', name: 'org_id' },
    name: { type: 'text' },
    createdAt,
  },
});

export const UserEntity = new EntitySchema<User>({
  name: 'User',
  tableName: 'users',
  columns: {
    id: { type: 'uuid', primary: true },
    email: { type: 'text' },
    name: { type: 'text', nullable: true },
    passwordHash: { type: 'text', name: 'password_hash', nullable: true },
    emailVerifiedAt: { type: 'timestamptz', name: 'email_verified_at', nullable: true },
    createdAt,
  },
});

export const MembershipEntity = new EntitySchema<Membership>({
  name: 'Membership',
  tableName: 'memberships',
  columns: {
    id: { type: 'uuid', primary: true },
    orgId: { type: 'uuid', name: 'org_id' },
    userId: { type: 'uuid', name: 'user_id' },
    role: { type: 'text' },
    teamId: { type: 'uuid', name: 'team_id', nullable: true },
    createdAt,
  },
});
