import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ApiKeys1732400000000 implements MigrationInterface {
  name = 'ApiKeys1732400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
        team_id uuid REFERENCES teams(id) ON DELETE CASCADE,
        workflow_id text,
        name text NOT NULL,
        scopes text[] NOT NULL,
        key_hash text NOT NULL,
        key_start text NOT NULL,
        key_last4 text NOT NULL,
        previous_key_hash text,
        previous_expires_at timestamptz,
        created_by uuid REFERENCES users(id) ON DELETE SET NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz,
        rate_limit jsonb
      )`);
    await q.query(`CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash)`);
    await q.query(`CREATE UNIQUE INDEX api_keys_previous_hash ON api_keys (previous_key_hash) WHERE previous_key_hash IS NOT NULL`);
    await q.query(`CREATE INDEX api_keys_org ON api_keys (org_id, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS api_keys`);
  }
}
