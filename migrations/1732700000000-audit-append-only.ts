import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit log is append-only in the database too, not only in the service: a trigger refuses every
 * UPDATE, DELETE and TRUNCATE of audit_events, whoever issues it (a bug, a script, a stolen connection).
 */
export class AuditAppendOnly1732700000000 implements MigrationInterface {
  name = 'AuditAppendOnly1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION flowgate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await q.query(`
      CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION flowgate_audit_append_only()`);
    await q.query(`
      CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION flowgate_audit_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events`);
    await q.query(`DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events`);
    await q.query(`DROP FUNCTION IF EXISTS flowgate_audit_append_only()`);
  }
}
