import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The dashboard (issue 7). Dashboard sessions live in the key-value store (Redis), not here.
 * - invitations: one-time links to join an organization. Only the SHA-256 of the link's token is
 *   stored; a link works once (accepted_at) and until expires_at (7 days).
 */
export class Dashboard1732600000000 implements MigrationInterface {
  name = 'Dashboard1732600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE invitations (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
        email text NOT NULL,
        role text NOT NULL,
        token_hash text NOT NULL UNIQUE,
        invited_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        accepted_at timestamptz
      )`);
    await q.query(`CREATE INDEX invitations_org ON invitations (org_id, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE invitations`);
  }
}
