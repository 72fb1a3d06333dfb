import { EntitySchema } from 'typeorm';

/** Append-only: the service inserts and reads; nothing updates or deletes a row. PostgreSQL. */
export interface AuditEvent {
  id: string;
  orgId: string | null;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  ip: string | null;
  details: Record<string, any>;
  createdAt: Date;
  /** Insertion order (bigserial, read as a string): the audit API's cursor. Never written by the app. */
  seq?: string;
}

export const AuditEventEntity = new EntitySchema<AuditEvent>({
  name: 'AuditEvent',
  tableName: 'audit_events',
  columns: {
    id: { type: 'uuid', primary: true },
    orgId: { type: 'uuid', name: 'org_id', nullable: true },
    actorType: { type: 'text', name: 'actor_type' },
    actorId: { type: 'text', name: 'actor_id', nullable: true },
    action: { type: 'text' },
    targetType: { type: 'text', name: 'target_type', nullable: true },
    targetId: { type: 'text', name: 'target_id', nullable: true },
    ip: { type: 'text', nullable: true },
    details: { type: 'jsonb' },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
    seq: { type: 'bigint', insert: false, update: false, select: true },
  },
});
