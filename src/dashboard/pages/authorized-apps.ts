import type { Pages } from '../context.js';

/** Authorized Apps: the signed-in user's own consents, and ending one. */
export function authorizedAppPages(p: Pages): void {
  const { r, d, org, O } = p;
  r.get(...org('/authorized-apps'), async (ctx) => {
    const o = O(ctx);
    p.page(ctx, o, 'authorized-apps', {
      title: 'Authorized Apps',
      nav: 'authorized-apps',
      apps: await d.consents.listForUser(o.userId),
      notice: ctx.query.revoked ? 'Access revoked. The app can no longer use its tokens.' : undefined,
    });
  });
  r.post(...org('/authorized-apps/:grantId/revoke'), async (ctx) => {
    const o = O(ctx);
    await d.consents.revoke({ type: 'user', id: o.userId, ip: ctx.ip }, o.userId, ctx.params.grantId);
    ctx.redirect(`${o.base}/authorized-apps?revoked=1`);
  });
}
