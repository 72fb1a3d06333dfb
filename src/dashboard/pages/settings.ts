import type { Context } from 'koa';
import { parse } from '../../http/guard.js';
import { organizationUpdate } from '../../api/organization.js';
import { formError } from '../form-errors.js';
import { str, type Fields, type Pages } from '../context.js';

/** Settings: the organization's name, the query-string key setting, plan limits and rate limits. */
export function settingsPages(p: Pages): void {
  const { r, s, org, O } = p;
  const settingsPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const organization = await s.accounts.getOrganization(o.orgId);
    p.page(
      ctx,
      o,
      'settings',
      {
        title: 'Settings',
        nav: 'settings',
        organization,
        planLimits: s.config.plans[organization.plan] ?? { maxApiKeys: null },
        rateLimits: Object.entries(s.config.plans[organization.plan]?.rateLimits ?? s.config.rateLimits?.defaults ?? {}).map(([category, l]) => ({ category, limit: l.limit, window: l.window })),
        rateLimitsEnabled: s.config.rateLimits?.enabled ?? false,
        keyOverrides: (await s.apiKeys.list(o.caller, o.orgId)).filter((k) => k.rate_limit).map((k) => ({ name: k.name, rateLimit: JSON.stringify(k.rate_limit) })),
        allowQuery: organization.settings.allowQueryApiKey !== false,
        errors: {},
        ...extra,
      },
      status,
    );
  };
  r.get(...org('/settings'), async (ctx) => settingsPage(ctx));
  r.post(...org('/settings', { admin: true }), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    try {
      const input = parse(organizationUpdate, { name: str(b.name), allow_query_api_key: str(b.allow_query_api_key) === 'on' });
      await s.accounts.updateOrganization(o.caller.actor, o.orgId, { name: input.name, settings: { allowQueryApiKey: input.allow_query_api_key } }, o.membership);
      await settingsPage(ctx, { notice: 'Settings saved.' });
    } catch (err) {
      const f = formError(err, { name: 'name' });
      await settingsPage(ctx, { errors: { name: f.errors.name ?? f.errors.form } }, f.status);
    }
  });
}
