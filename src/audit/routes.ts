import Router from '@koa/router';
import { z } from 'zod';
import type { AuditLog } from './service.js';
import { InvalidCursorError } from './service.js';
import type { AuditEvent } from './entity.js';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf } from '../auth/middleware.js';
import { parseInput } from '../http/body.js';
import { errors } from '../http/errors.js';
import { requireOrgScope } from '../auth/access.js';
import { eventTypeFor, sanitizeDetails } from './events.js';

const query = z.object({
  action: z.string().min(1).max(100).optional(),
  actor: z.string().min(1).max(100).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  cursor: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});

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
  r.get('/', requireOrgScope('audit:read'), async (ctx) => {
    const q = parseInput(query, ctx.query);
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
      if (err instanceof InvalidCursorError) throw errors.validation('cursor is not valid', { field: 'cursor' });
      throw err;
    }
  });
  return r;
}
