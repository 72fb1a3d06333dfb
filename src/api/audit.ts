import Router from '@koa/router';
import { z } from 'zod';
import type { AuditLog } from '../audit/service.js';
import { InvalidCursorError } from '../audit/service.js';
import type { AuditEvent } from '../audit/entity.js';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf } from '../auth/middleware.js';
import { errors } from '../http/errors.js';
import { guard } from '../http/guard.js';
import { pageQueryShape } from '../http/pagination.js';
import { okPage } from '../http/responses.js';
import { eventTypeFor, sanitizeDetails } from '../audit/events.js';

const query = z.object({
  ...pageQueryShape,
  action: z.string().min(1).max(100).optional().meta({ description: 'Only this action, e.g. api_key.created' }),
  actor: z.string().min(1).max(100).optional().meta({ description: 'Only events of this actor id (user, key or client)' }),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
});

export const AuditEventSchema = z
  .object({
    id: z.string(),
    action: z.string(),
    event_type: z.string().nullable().meta({ description: 'The webhook event type this action emits, if any' }),
    actor: z.object({ type: z.string(), id: z.string().nullable() }),
    target: z.object({ type: z.string().nullable(), id: z.string().nullable() }),
    ip: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
    created_at: z.string(),
  })
  .meta({ id: 'AuditEvent' });

export function auditEventView(e: AuditEvent) {
  return {
    id: e.id,
    action: e.action,
    event_type: eventTypeFor(e.action) ?? null,
    actor: { type: e.actorType, id: e.actorId },
    target: { type: e.targetType, id: e.targetId },
    ip: e.ip,
    details: sanitizeDetails(e.details ?? {}),
    created_at: new Date(e.createdAt).toISOString(),
  };
}

/** `GET /api/v1/audit-events`: the caller's organization's events, newest first (owners, admins, audit:read). */
export function auditRoutes(d: { audit: AuditLog; auth: AuthService }): Router {
  const r = new Router({ prefix: '/api/v1/audit-events' });
  r.use(authenticate(d.auth));
  r.get(
    '/',
    guard(
      {
        operationId: 'listAuditEvents',
        summary: "The organization's audit log, newest first",
        tags: ['Audit log'],
        access: { scopes: ['audit:read'], admin: true, restricted: 'allow' },
        query,
        responses: { 200: { description: 'Events', schema: okPage(AuditEventSchema) } },
      },
      async (ctx, { query: q }) => {
        try {
          const page = await d.audit.page(principalOf(ctx).orgId, {
            action: q.action,
            actor: q.actor,
            since: q.since ? new Date(q.since) : undefined,
            until: q.until ? new Date(q.until) : undefined,
            cursor: q.cursor,
            limit: q.limit,
          });
          ctx.body = { success: true, data: page.items.map(auditEventView), next_cursor: page.nextCursor };
        } catch (err) {
          if (err instanceof InvalidCursorError) throw errors.validation('cursor is not valid', 'cursor');
          throw err;
        }
      },
    ),
  );
  return r;
}
