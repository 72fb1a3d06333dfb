import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * users.email_verified_at: when the address owner proved control of the address (OIDC Core §5.1
 * `email_verified`). NULL until then; nothing in an invitation or a sign-up proves it, so every
 * existing user starts unverified.
 */
export class EmailVerified1732900000000 implements MigrationInterface {
  name = 'EmailVerified1732900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users ADD COLUMN email_verified_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users DROP COLUMN email_verified_at`);
  }
}
