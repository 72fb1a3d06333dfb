import type { Context } from 'koa';
import { AppError } from '../../http/errors.js';
import { parse } from '../../http/guard.js';
import { createApiKeyInput } from '../../apikeys/service.js';
import { PRESET_NAMES } from '../../apikeys/presets.js';
import { describeScope } from '../../oauth/scopes.js';
import { formError } from '../form-errors.js';
import { exact, EXPIRY_CHOICES, expiryFromForm, GRACE_CHOICES, keyStatus, PRESET_LABELS } from '../present.js';
import { list, str, type Fields, type Pages } from '../context.js';

/** API Keys: the list ("3 of 5"), creating with presets (shown once), rolling with a grace period, deleting. */
export function apiKeyPages(p: Pages): void {
  const { r, s, org, O } = p;

  const keysPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const [keys, members, teams, organization] = await Promise.all([
      s.apiKeys.list(o.caller, o.orgId),
      s.accounts.listMembers(o.orgId),
      s.accounts.listTeams(o.orgId),
      s.accounts.getOrganization(o.orgId),
    ]);
    const limit = s.config.plans[organization.plan]?.maxApiKeys ?? null;
    const active = keys.filter((k) => k.status === 'active').length;
    const emails = new Map(members.map((m) => [m.userId, m.email]));
    const teamNames = new Map(teams.map((t) => [t.id, t.name]));
    p.page(
      ctx,
      o,
      'api-keys',
      {
        title: 'API Keys',
        nav: 'api-keys',
        keys: keys.map((k) => ({ ...k, statusLabel: keyStatus(k), createdByEmail: k.created_by ? (emails.get(k.created_by) ?? 'a former member') : 'CLI', teamName: k.team_id ? (teamNames.get(k.team_id) ?? '') : '' })),
        plan: organization.plan,
        limit,
        active,
        atCap: limit !== null && active >= limit,
        ...extra,
      },
      status,
    );
  };

  const newKeyPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const o = O(ctx);
    const teams = await s.accounts.listTeams(o.orgId);
    p.page(
      ctx,
      o,
      'api-key-new',
      {
        title: 'Create new API key',
        nav: 'api-keys',
        teams,
        presets: PRESET_NAMES.map((x) => ({ value: x, ...PRESET_LABELS[x] })),
        // The scopes this member can hold (members never hold the owners' and admins' ones).
        scopes: o.principal.scopes.map((name) => ({ name, description: describeScope(name) })),
        expiryChoices: EXPIRY_CHOICES,
        values: { permissions: 'read_only', expiration: 'never', scopes: [] as string[] },
        errors: {},
        ...extra,
      },
      status,
    );
  };

  r.get(...org('/api-keys'), async (ctx) => keysPage(ctx));
  r.get(...org('/api-keys/new'), async (ctx) => newKeyPage(ctx));
  r.post(...org('/api-keys/new'), async (ctx) => {
    const o = O(ctx);
    const b = ctx.request.body as Fields;
    const values = {
      name: str(b.name),
      permissions: str(b.permissions) || 'read_only',
      scopes: list(b.scopes),
      expiration: str(b.expiration) || 'never',
      expires_on: str(b.expires_on),
      team_id: str(b.team_id),
      workflow_id: str(b.workflow_id).trim(),
    };
    const errs: Record<string, string> = {};
    let expiresAt: string | null = null;
    try {
      expiresAt = expiryFromForm(values.expiration, values.expires_on);
    } catch (e) {
      errs.expires_at = (e as Error).message;
    }
    if (!values.name.trim()) errs.name = 'Give the key a name, e.g. "Production API".';
    if (values.permissions === 'custom' && values.scopes.length === 0) errs.scopes = 'Choose at least one permission.';
    if (values.permissions !== 'custom' && !PRESET_NAMES.includes(values.permissions as never)) errs.permissions = 'Choose a permission level.';
    if (Object.keys(errs).length) return newKeyPage(ctx, { values, errors: errs }, 400);
    try {
      const input = parse(createApiKeyInput, {
        name: values.name,
        ...(values.permissions === 'custom' ? { scopes: values.scopes } : { preset: values.permissions }),
        team_id: values.team_id || null,
        workflow_id: values.workflow_id || null,
        expires_at: expiresAt,
      });
      const { key, apiKey } = await s.apiKeys.create(o.caller, o.orgId, input);
      ctx.set('Cache-Control', 'no-store');
      p.page(
        ctx,
        o,
        'secret-once',
        {
          title: 'Your new API key',
          nav: 'api-keys',
          heading: `API key “${apiKey.name}” created`,
          label: 'API key',
          secret: key,
          warning: 'Copy this key now and store it somewhere safe. It will not be shown again: Flowgate keeps only a hash of it.',
          back: `${o.base}/api-keys`,
          backLabel: 'Done: back to API keys',
        },
        201,
      );
    } catch (err) {
      const f = formError(err, { name: 'name', scopes: 'scopes', team_id: 'team_id', workflow_id: 'workflow_id', expires_at: 'expires_at' });
      return newKeyPage(ctx, { values, errors: f.errors, limitReached: f.error.code === 'KEY_LIMIT_REACHED' }, f.status);
    }
  });

  /** A key the signed-in member may manage (roll, delete): a member's view of another's key is masked. */
  const manageableKey = async (ctx: Context) => {
    const key = await s.apiKeys.get(O(ctx).caller, ctx.params.id);
    if (key.masked) throw new AppError(403, 'FORBIDDEN', 'Members can manage only their own API keys');
    return key;
  };
  const rollPage = async (ctx: Context, error?: string, status = 200) => {
    const key = await manageableKey(ctx);
    p.page(ctx, O(ctx), 'api-key-roll', { title: `Roll ${key.name}`, nav: 'api-keys', key, graceChoices: GRACE_CHOICES, selected: 86400, error }, status);
  };

  r.get(...org('/api-keys/:id/roll'), async (ctx) => rollPage(ctx));
  r.post(...org('/api-keys/:id/roll'), async (ctx) => {
    const o = O(ctx);
    const grace = Number(str((ctx.request.body as Fields).grace_seconds));
    if (!GRACE_CHOICES.some((g) => g.value === grace)) return rollPage(ctx, 'Choose how long the old secret keeps working.', 400);
    const { key, apiKey } = await s.apiKeys.roll(o.caller, ctx.params.id, grace);
    ctx.set('Cache-Control', 'no-store');
    p.page(ctx, o, 'secret-once', {
      title: 'Rolled API key',
      nav: 'api-keys',
      heading: `New secret for “${apiKey.name}”`,
      label: 'New API key',
      secret: key,
      note: grace === 0 ? 'The old secret stopped working now.' : `The old secret keeps working until ${exact(apiKey.previous_secret_expires_at!)}.`,
      warning: 'Copy this key now and store it somewhere safe. It will not be shown again.',
      back: `${o.base}/api-keys`,
      backLabel: 'Done: back to API keys',
    });
  });

  r.get(...org('/api-keys/:id/delete'), async (ctx) => {
    const o = O(ctx);
    const key = await manageableKey(ctx);
    p.page(ctx, o, 'confirm', {
      title: `Delete ${key.name}`,
      nav: 'api-keys',
      heading: `Delete the API key “${key.name}”?`,
      text: 'Requests using this key will be refused immediately. Deleted keys cannot be recovered.',
      action: ctx.path,
      button: 'Delete key',
      danger: true,
      back: `${o.base}/api-keys`,
    });
  });
  r.post(...org('/api-keys/:id/delete'), async (ctx) => {
    const o = O(ctx);
    const key = await s.apiKeys.get(o.caller, ctx.params.id);
    await s.apiKeys.revoke(o.caller, ctx.params.id);
    await keysPage(ctx, { notice: `The API key “${key.name}” was deleted. Requests using it are refused from now on.` });
  });
}
