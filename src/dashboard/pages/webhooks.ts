import type { Pages } from '../context.js';

/** Webhooks (owners and admins): the organization's endpoints. */
export function webhookPages(p: Pages): void {
  const { r, s, org, O } = p;
  r.get(...org('/webhooks', { admin: true }), async (ctx) => {
    const o = O(ctx);
    p.page(ctx, o, 'webhooks', { title: 'Webhooks', nav: 'webhooks', endpoints: await s.webhooks.list(o.orgId) });
  });
}
