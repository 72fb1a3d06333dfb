import { InvalidCursorError } from '../../audit/service.js';
import { str, type Pages } from '../context.js';

/** Audit Log (owners and admins): newest first, filtered by action and actor, 25 a page. */
export function auditLogPages(p: Pages): void {
  const { r, s, org, O } = p;
  r.get(...org('/audit-log', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const action = str(ctx.query.action as string).trim().slice(0, 100);
    const actor = str(ctx.query.actor as string).trim().slice(0, 100);
    const cursor = str(ctx.query.cursor as string).slice(0, 200);
    const members = await s.accounts.listMembers(o.orgId);
    let result;
    let error: string | undefined;
    try {
      result = await s.audit.page(o.orgId, { action: action || undefined, actor: actor || undefined, cursor: cursor || undefined, limit: 25 });
    } catch (err) {
      if (!(err instanceof InvalidCursorError)) throw err;
      error = 'That page link is no longer valid. Start again from the newest events.';
      result = { items: [], nextCursor: null };
    }
    const emails = new Map(members.map((m) => [m.userId, m.email]));
    const qs = (c: string) => `?${new URLSearchParams({ ...(action && { action }), ...(actor && { actor }), cursor: c })}`;
    p.page(ctx, o, 'audit-log', {
      title: 'Audit Log',
      nav: 'audit-log',
      events: result.items.map((e) => ({
        ...e,
        who: e.actorType === 'user' ? (emails.get(e.actorId ?? '') ?? e.actorId ?? 'a user') : e.actorType === 'cli' ? 'CLI' : e.actorType === 'system' ? 'Flowgate' : `${e.actorType.replace('_', ' ')} ${e.actorId ?? ''}`,
        createdAt: new Date(e.createdAt),
      })),
      members,
      filters: { action, actor },
      nextHref: result.nextCursor ? qs(result.nextCursor) : null,
      firstHref: cursor ? `?${new URLSearchParams({ ...(action && { action }), ...(actor && { actor }) })}` : null,
      error,
    });
  });
}
