import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Events and webhooks (issue 8).
 * - audit_events.seq: a total order for cursor pagination of the audit API (timestamps tie and lose
 *   microseconds in JavaScript). Not used by the dispatcher: see event_outbox.
 * - event_outbox: one row per audit event that is a public event type, inserted in the same
 *   transaction as the change (transactional outbox); the dispatcher claims rows with
 *   FOR UPDATE SKIP LOCKED, fans them out into webhook_deliveries and deletes them, in one transaction.
 * - webhook_endpoints / webhook_deliveries / webhook_attempts: who wants what, one row per
 *   (endpoint, event) and one row per HTTP attempt.
 * - api_key_expiry_notices: makes "api_key.expiring (7 d, 1 d)" and "api_key.expired" exactly-once
 *   across instances (INSERT ... ON CONFLICT DO NOTHING in the transaction that records the event).
 */
export class Events1732500000000 implements MigrationInterface {
  name = 'Events1732500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events ADD COLUMN seq bigserial`);
    await q.query(`CREATE INDEX audit_events_org_seq ON audit_events (org_id, seq DESC)`);
    await q.query(`
      CREATE TABLE event_outbox (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL REFERENCES audit_events(id),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE webhook_endpoints (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
        url text NOT NULL,
        description text,
        events jsonb,
        secret_enc text NOT NULL,
        previous_secret_enc text,
        previous_secret_expires_at timestamptz,
        enabled boolean NOT NULL DEFAULT true,
        disabled_reason text,
        failing_since timestamptz,
        created_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id)`);
    await q.query(`
      CREATE TABLE webhook_deliveries (
        id uuid PRIMARY KEY,
        endpoint_id uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
        event_id uuid NOT NULL,
        event_type text NOT NULL,
        body text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempt_count integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        lease_id uuid,
        last_status_code integer,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz,
        UNIQUE (endpoint_id, event_id)
      )`);
    await q.query(`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`);
    await q.query(`CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC)`);
    await q.query(`
      CREATE TABLE webhook_attempts (
        id uuid PRIMARY KEY,
        delivery_id uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        status_code integer,
        latency_ms integer NOT NULL,
        error text,
        response_body text
      )`);
    await q.query(`CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at)`);
    await q.query(`
      CREATE TABLE api_key_expiry_notices (
        key_id uuid NOT NULL,
        kind text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (key_id, kind)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['api_key_expiry_notices', 'webhook_attempts', 'webhook_deliveries', 'webhook_endpoints', 'event_outbox']) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
    await q.query(`DROP INDEX IF EXISTS audit_events_org_seq`);
    await q.query(`ALTER TABLE audit_events DROP COLUMN IF EXISTS seq`);
  }
}
