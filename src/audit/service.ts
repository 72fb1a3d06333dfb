import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { AuditEventEntity, type AuditEvent } from './entity.js';
import { eventTypeFor } from './events.js';

/** Who did something, and from where. Every service call that changes state receives one. */
export interface Actor {
  type: 'user' | 'api_key' | 'client' | 'cli' | 'system';
  id: string | null;
  ip?: string | null;
}

export const CLI_ACTOR: Actor = { type: 'cli', id: null, ip: null };
export const SYSTEM_ACTOR: Actor = { type: 'system', id: null, ip: null };

export interface AuditInput {
  orgId: string | null;
  action: string;
  targetType?: string;
  targetId?: string;
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  action?: string;
  actor?: string;
  since?: Date;
  until?: Date;
  /** Opaque cursor from a previous page (`next_cursor`). */
  cursor?: string;
  limit?: number;
}

export interface AuditPage {
  items: AuditEvent[];
  nextCursor: string | null;
}

export class InvalidCursorError extends Error {}

/**
 * The audit log, and the single entry point for events. Append-only: this class inserts and reads;
 * there is no update or delete path.
 */
export class AuditLog {
  constructor(private readonly ds: DataSource) {}

  /**
   * Append one event; pass the transaction's manager so the event commits with its change.
   * When the action is a public event type, an outbox row is inserted in the same transaction: the
   * event exists for webhooks exactly when its change committed (transactional outbox).
   *
   * Why an outbox table and not a cursor over audit_events: a cursor (by seq or time) can move past
   * a row whose transaction took its sequence number earlier but committed later, losing that event.
   * Outbox rows are claimed with FOR UPDATE SKIP LOCKED and deleted when fanned out, so whatever
   * the commit order, every committed event is fanned out once.
   */
  async record(actor: Actor, input: AuditInput, manager: EntityManager = this.ds.manager): Promise<string> {
    const id = randomUUID();
    const run = async (m: EntityManager) => {
      await m.getRepository(AuditEventEntity).insert({
        id,
        orgId: input.orgId,
        actorType: actor.type,
        actorId: actor.id,
        action: input.action,
        targetType: input.targetType ?? null,
        targetId: input.targetId ?? null,
        ip: actor.ip ?? null,
        details: (input.details ?? {}) as Record<string, any>,
      });
      if (eventTypeFor(input.action)) await m.query('INSERT INTO event_outbox (event_id) VALUES ($1)', [id]);
    };
    // Outside a caller's transaction, the two inserts still commit together.
    if (manager.queryRunner?.isTransactionActive) await run(manager);
    else await manager.transaction(run);
    return id;
  }

  async get(id: string): Promise<AuditEvent | null> {
    return this.ds.getRepository(AuditEventEntity).findOneBy({ id });
  }

  /** The organization's events, newest first, with filters and a cursor (insertion order). */
  async list(orgId: string, opts: AuditQuery = {}): Promise<AuditEvent[]> {
    return (await this.page(orgId, opts)).items;
  }

  async page(orgId: string, opts: AuditQuery = {}): Promise<AuditPage> {
    const limit = Math.max(1, Math.min(opts.limit ?? 50, 200));
    const qb = this.ds.getRepository(AuditEventEntity).createQueryBuilder('e').where('e.orgId = :orgId', { orgId });
    if (opts.action) qb.andWhere('e.action = :action', { action: opts.action });
    if (opts.actor) qb.andWhere('e.actorId = :actor', { actor: opts.actor });
    if (opts.since) qb.andWhere('e.createdAt >= :since', { since: opts.since });
    if (opts.until) qb.andWhere('e.createdAt < :until', { until: opts.until });
    if (opts.cursor !== undefined) qb.andWhere('e.seq < :seq', { seq: decodeCursor(opts.cursor) });
    const rows = await qb.orderBy('e.seq', 'DESC').limit(limit + 1).getMany();
    const items = rows.slice(0, limit);
    const nextCursor = rows.length > limit ? encodeCursor(String(items[items.length - 1].seq)) : null;
    return { items, nextCursor };
  }
}

function encodeCursor(seq: string): string {
  return Buffer.from(`a1:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const m = /^a1:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new InvalidCursorError('cursor is not valid');
  return m[1];
}
