import type { Context } from 'koa';
import { AppError } from '../../http/errors.js';
import { ROLES, type Role } from '../../accounts/entities.js';
import { formError } from '../form-errors.js';
import { exact } from '../present.js';
import { str, type Fields, type Pages } from '../context.js';

/** Members: the list, invitations (one-time links), role changes and removal (owners and admins). */
export function memberPages(p: Pages): void {
  const { r, s, d, org, O } = p;

  const membersPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const [members, pending] = await Promise.all([s.accounts.listMembers(o.orgId), o.admin ? d.invitations.listPending(o.orgId) : []]);
    p.page(ctx, o, 'members', { title: 'Members', nav: 'members', members, pending, roles: ROLES, owner: o.membership.role === 'owner', values: { role: 'member' }, errors: {}, ...extra }, status);
  };
  /** A refusal about one member's row (role change, removal) shown on that row. */
  const rowError = async (ctx: Context, err: unknown) => {
    const f = formError(err);
    await membersPage(ctx, { rowError: { userId: ctx.params.userId, message: f.error.message } }, f.status);
  };

  r.get(...org('/members'), async (ctx) => membersPage(ctx));
  r.post(...org('/members/invite', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    const values = { email: str(b.email), role: str(b.role) || 'member' };
    try {
      const { invitation, token } = await d.invitations.invite(o.caller.actor, o.orgId, { email: values.email, role: values.role as Role }, o.membership);
      ctx.set('Cache-Control', 'no-store');
      p.page(
        ctx,
        o,
        'secret-once',
        {
          title: 'Invitation link',
          nav: 'members',
          heading: `Invitation for ${invitation.email}`,
          label: 'Invitation link',
          secret: `${s.config.issuer}/dashboard/invitations/${token}`,
          warning: `Send this link to ${invitation.email} yourself. It works once, until ${exact(invitation.expiresAt)}, and will not be shown again.`,
          back: `${o.base}/members`,
          backLabel: 'Done: back to members',
        },
        201,
      );
    } catch (err) {
      const f = formError(err, { email: 'email', role: 'role' });
      // The invite form has two inputs: what names neither is about the address.
      await membersPage(ctx, { values, errors: f.errors.form ? { email: f.errors.form } : f.errors }, f.status);
    }
  });
  r.post(...org('/members/:userId/role', { admin: true }), async (ctx) => {
    const o = O(ctx);
    try {
      await s.accounts.changeRole(o.caller.actor, o.orgId, ctx.params.userId, str((ctx.request.body as Fields).role) as Role, o.membership);
      await membersPage(ctx, { notice: 'Role changed.' });
    } catch (err) {
      await rowError(ctx, err);
    }
  });
  r.get(...org('/members/:userId/remove', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const member = (await s.accounts.listMembers(o.orgId)).find((m) => m.userId === ctx.params.userId);
    if (!member) throw new AppError(404, 'NOT_FOUND', 'Member not found');
    p.page(ctx, o, 'confirm', {
      title: `Remove ${member.email}`,
      nav: 'members',
      heading: `Remove ${member.email} from ${o.orgName}?`,
      text: 'They lose access to this organization at once. API keys they created keep working until you delete them.',
      action: ctx.path,
      button: 'Remove member',
      danger: true,
      back: `${o.base}/members`,
    });
  });
  r.post(...org('/members/:userId/remove', { admin: true }), async (ctx) => {
    const o = O(ctx);
    try {
      await s.accounts.removeMember(o.caller.actor, o.orgId, ctx.params.userId, o.membership);
      await membersPage(ctx, { notice: 'Member removed.' });
    } catch (err) {
      await rowError(ctx, err);
    }
  });
}
