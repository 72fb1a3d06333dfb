import type { MigrationInterface, QueryRunner } from 'typeorm';

/** An invitation can place the new member in a team (set NULL when the team is deleted first). */
export class InvitationTeams1733100000000 implements MigrationInterface {
  name = 'InvitationTeams1733100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE invitations ADD COLUMN team_id uuid NULL REFERENCES teams(id) ON DELETE SET NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE invitations DROP COLUMN team_id`);
  }
}
