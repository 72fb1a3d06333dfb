import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { AuditEventEntity, type AuditEvent } from './entity.js';

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

export class AuditLog {
  constructor(private readonly ds: DataSource) {}

  /** Append one event; pass the transaction's manager so the event commits with its change. */
  async record(actor: Actor, input: AuditInput, manager: EntityManager = this.ds.manager): Promise<void> {
    await manager.getRepository(AuditEventEntity).insert({
      id: randomUUID(),
      orgId: input.orgId,
      actorType: actor.type,
      actorId: actor.id,
      action: input.action,
      targetType: input.targetType ?? null,
      targetId: input.targetId ?? null,
      ip: actor.ip ?? null,
      details: (input.details ?? {}) as Record<string, any>,
    });
  }

  async list(orgId: string, opts: { limit?: number; action?: string } = {}): Promise<AuditEvent[]> {
    const qb = this.ds.getRepository(AuditEventEntity).createQueryBuilder('e').where('e.orgId = :orgId', { orgId });
    if (opts.action) qb.andWhere('e.action = :action', { action: opts.action });
    return qb.orderBy('e.createdAt', 'DESC').addOrderBy('e.id', 'DESC').limit(Math.min(opts.limit ?? 50, 200)).getMany();
  }
}
