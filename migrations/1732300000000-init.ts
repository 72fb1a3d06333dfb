import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1732300000000 implements MigrationInterface {
  name = 'Init1732300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE organizations (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        plan text NOT NULL DEFAULT 'free',
        settings jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE teams (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (org_id, name)
      )`);
    await q.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY,
        email text NOT NULL,
        name text,
        password_hash text,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX users_email_lower ON users (lower(email))`);
    await q.query(`
      CREATE TABLE memberships (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
        team_id uuid REFERENCES teams(id) ON DELETE SET NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (org_id, user_id)
      )`);
    await q.query(`CREATE INDEX memberships_user ON memberships (user_id)`);
    await q.query(`
      CREATE TABLE oauth_clients (
        client_id text PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
        name text NOT NULL,
        metadata jsonb NOT NULL,
        secret_hash text,
        introspect boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX oauth_clients_org ON oauth_clients (org_id)`);
    await q.query(`
      CREATE TABLE oidc_artifacts (
        model text NOT NULL,
        id text NOT NULL,
        payload jsonb NOT NULL,
        grant_id text,
        uid text,
        user_code text,
        expires_at timestamptz,
        consumed_at timestamptz,
        PRIMARY KEY (model, id)
      )`);
    await q.query(`CREATE INDEX oidc_artifacts_grant ON oidc_artifacts (grant_id) WHERE grant_id IS NOT NULL`);
    await q.query(`CREATE INDEX oidc_artifacts_uid ON oidc_artifacts (model, uid) WHERE uid IS NOT NULL`);
    await q.query(`CREATE INDEX oidc_artifacts_expires ON oidc_artifacts (expires_at)`);
    await q.query(`
      CREATE TABLE oauth_consents (
        grant_id text PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        client_id text NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
        org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
        scope text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);
    await q.query(`CREATE INDEX oauth_consents_user_client ON oauth_consents (user_id, client_id) WHERE revoked_at IS NULL`);
    await q.query(`
      CREATE TABLE audit_events (
        id uuid PRIMARY KEY,
        org_id uuid,
        actor_type text NOT NULL,
        actor_id text,
        action text NOT NULL,
        target_type text,
        target_id text,
        ip text,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX audit_events_org_time ON audit_events (org_id, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['audit_events', 'oauth_consents', 'oidc_artifacts', 'oauth_clients', 'memberships', 'users', 'teams', 'organizations']) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }
}
