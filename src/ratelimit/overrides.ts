import type { DataSource } from 'typeorm';
import type { Config } from '../config/schema.js';
import type { Actor, AuditLog } from '../audit/service.js';
import { errors } from '../http/errors.js';
import { InvalidLimitsError, type RateLimitPolicies } from './policies.js';
import { isLiveKeyOf } from '../storage/queries/api-keys.js';

export interface OrgLimitsView {
  plan: string;
  /** The plan's limits per category (config/default.json). */
  plan_limits: Record<string, unknown>;
  /** The organization's own overrides, or null. */
  organization_overrides: Record<string, unknown> | null;
}

/**
 * Setting the organization's and a single key's rate-limit overrides (defaults come from the plan; an
 * organization and a key can override them). Validated by the same schema as the config; every change
 * is audited and reaches every instance through the invalidation channel at once.
 * Callers check who may change what (the routes: owners and admins; an organization's limits only
 * with an unrestricted credential, a key's only within the credential's restriction).
 */
export class RateLimitOverrides {
  constructor(
    private readonly ds: DataSource,
    private readonly config: Config,
    private readonly policies: RateLimitPolicies,
    private readonly audit: AuditLog,
  ) {}

  async show(orgId: string): Promise<OrgLimitsView> {
    const rows: { plan: string; limits: Record<string, unknown> | null }[] = await this.ds.query(
      `SELECT plan, settings->'rateLimits' AS limits FROM organizations WHERE id = $1`,
      [orgId],
    );
    if (!rows[0]) throw errors.notFound(`Organization ${orgId} not found`);
    return {
      plan: rows[0].plan,
      plan_limits: (this.config.plans[rows[0].plan]?.rateLimits ?? this.config.rateLimits.defaults) as Record<string, unknown>,
      organization_overrides: rows[0].limits,
    };
  }

  async setForOrganization(actor: Actor, orgId: string, limits: Record<string, unknown> | null): Promise<OrgLimitsView> {
    await this.show(orgId);
    await this.valid(() => this.policies.setOrgLimits(orgId, limits));
    await this.audit.record(actor, { orgId, action: 'organization.rate_limits_updated', targetType: 'organization', targetId: orgId, details: { rate_limits: limits } });
    return this.show(orgId);
  }

  async setForKey(actor: Actor, orgId: string, keyId: string, limits: Record<string, unknown> | null): Promise<{ id: string; rate_limit: Record<string, unknown> | null }> {
    // The key must be a live key of the caller's organization: no reaching into another tenant.
    if (!(await isLiveKeyOf(this.ds, keyId, orgId))) throw errors.notFound(`API key ${keyId} not found`);
    await this.valid(() => this.policies.setKeyLimits(keyId, limits));
    await this.audit.record(actor, { orgId, action: 'api_key.updated', targetType: 'api_key', targetId: keyId, details: { rate_limit: limits } });
    return { id: keyId, rate_limit: limits };
  }

  private async valid(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (err instanceof InvalidLimitsError) throw errors.validation(`Invalid rate limits: ${err.message}`, err.field ? `limits.${err.field}` : 'limits');
      throw err;
    }
  }
}
