import type { Context } from 'koa';
import { AppError } from '../../http/errors.js';
import type { InvitationsService } from '../../accounts/invitations.js';
import { formError } from '../form-errors.js';
import { str, type Fields, type Pages } from '../context.js';

type FoundInvitation = NonNullable<Awaited<ReturnType<InvitationsService['lookup']>>>;

/**
 * Accepting an invitation (no session needed: the link is the credential, once). The form's CSRF
 * value is bound to the link and to this browser's pre-session cookie, as the sign-in form's is: a
 * form posted from another site cannot sign a victim's browser into the attacker's account.
 */
export function invitationPages(p: Pages): void {
  const { r, d } = p;
  const invalid = (ctx: Context) =>
    p.html(ctx, 'error', { title: 'Invitation not valid', error: 'INVITATION_INVALID', description: 'This invitation link is not valid: it was already used, it expired, or it was mistyped. Ask for a new one.' }, 410);
  const invitationPage = (ctx: Context, found: FoundInvitation, error?: string, status = 200) =>
    p.html(ctx, 'dashboard/accept-invitation', { title: `Join ${found.orgName}`, ...found, csrf: p.preSessionCsrf(ctx, `invite:${ctx.params.token}`), action: ctx.path, error }, status);

  r.get('/invitations/:token', async (ctx) => {
    const found = await d.invitations.lookup(ctx.params.token);
    if (!found) return invalid(ctx);
    invitationPage(ctx, found);
  });

  r.post('/invitations/:token', p.form, async (ctx) => {
    const body = ctx.request.body as Fields;
    p.checkPreSessionCsrf(ctx, `invite:${ctx.params.token}`, body.csrf);
    const found = await d.invitations.lookup(ctx.params.token);
    if (!found) return invalid(ctx);
    const password = str(body.password).slice(0, 1024);
    if (!found.existingUser && password !== str(body.password_confirm).slice(0, 1024)) {
      return invitationPage(ctx, found, 'The two passwords do not match.', 400);
    }
    // An existing account proves itself with its password here: the same brute-force guard as the
    // sign-in forms, or an invitation link would be a way to guess anyone's password without limit.
    if (found.existingUser) {
      try {
        await d.loginGuard?.(ctx, found.invitation.email);
      } catch (err) {
        if (!(err instanceof AppError) || err.status !== 429) throw err;
        return invitationPage(ctx, found, err.message, 429);
      }
    }
    try {
      const user = await d.invitations.accept(ctx.params.token, password);
      await p.startSession(ctx, user.id);
      ctx.redirect(`/dashboard/orgs/${found.invitation.orgId}/api-keys`);
    } catch (err) {
      if (err instanceof AppError && err.status === 410) throw err;
      const f = formError(err);
      invitationPage(ctx, found, f.error.message, f.status);
    }
  });
}
