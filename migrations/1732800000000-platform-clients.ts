import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Platform-wide clients: resource servers an operator registers for the platform's own services,
 * which introspect the credentials of every organization. They belong to no organization (org_id
 * NULL); every client an organization registers keeps its org_id and sees only its organization.
 */
export class PlatformClients1732800000000 implements MigrationInterface {
  name = 'PlatformClients1732800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE oauth_clients ALTER COLUMN org_id DROP NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM oauth_clients WHERE org_id IS NULL`);
    await q.query(`ALTER TABLE oauth_clients ALTER COLUMN org_id SET NOT NULL`);
  }
}
