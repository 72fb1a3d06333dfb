import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { categoryLimitsSchema, type Config, type RateLimitConfig } from '../config/schema.js';
import type { Cache } from '../storage/cache.js';
import { tags } from '../storage/invalidation.js';
import { keyRateLimit, setKeyRateLimit } from '../storage/queries/api-keys.js';
import type { RateLimit } from './types.js';

type Limits = Record<string, RateLimitConfig>;

/** The pseudo-category `all`: one shared budget for every category not named ("1000 per hour" for everything). */
export const ALL = 'all';

/** The limit that applies to one category, and the budget (bucket) it counts against. */
export interface Resolved {
  limit: RateLimit;
  bucket: string;
}

/** What sets a credential's budget, as its resolution read it with the credential (API keys, exchanged tokens). */
export interface KnownLimits {
  plan: string;
  keyLimits: Record<string, unknown> | null;
  orgLimits: Record<string, unknown> | null;
}

export interface PolicyCaches {
  orgs: Cache<{ plan: string; limits: Limits | null }>;
  keys: Cache<Limits | null>;
  /** Drops what a change makes stale, here and on every instance (the one invalidation channel). */
  publish: (...changed: string[]) => Promise<void>;
}

/**
 * Which limit applies: the API key's override, then the organization's (`settings.rateLimits`), then
 * the plan's, then the deployment's defaults; at each level a named category wins over `all`.
 * A key's resolution carries its plan and both overrides (read with the key, in one statement), so
 * a key's check reads nothing more; other credentials' organizations are read once per cache
 * lifetime. Overrides are entries of the one cache type, tagged `org:` and `key:`: a change drops
 * them, and the credentials resolved with them, on every instance.
 */
export class RateLimitPolicies {
  /** Parsed overrides by the stored object they were parsed from (resolutions keep that object). */
  private readonly parsed = new WeakMap<object, Limits | null>();

  constructor(
    private readonly ds: DataSource,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly caches: PolicyCaches,
  ) {}

  async resolve(category: string, orgId: string | null | undefined, keyId?: string | null, known?: KnownLimits): Promise<Resolved | null> {
    let key: Limits | null | undefined;
    let org: { plan: string; limits: Limits | null } | undefined;
    if (known) {
      key = keyId ? this.tolerant(known.keyLimits, `api key ${keyId}`) : undefined;
      org = { plan: known.plan, limits: this.tolerant(known.orgLimits, `organization ${orgId}`) };
    } else {
      [org, key] = await Promise.all([orgId ? this.org(orgId) : undefined, keyId ? this.key(keyId) : undefined]);
    }
    const levels: (Limits | null | undefined)[] = [key, org?.limits, org ? this.config.plans[org.plan]?.rateLimits : undefined, this.config.rateLimits.defaults];
    for (const l of levels) {
      if (!l) continue;
      if (l[category]) return { limit: l[category], bucket: category };
      if (l[ALL]) return { limit: l[ALL], bucket: ALL };
    }
    return null;
  }

  /** Validates and stores an organization's overrides (null removes them). */
  async setOrgLimits(orgId: string, limits: Record<string, unknown> | null): Promise<void> {
    if (limits !== null) parseLimits(limits);
    await this.ds.query(
      `UPDATE organizations SET settings = CASE WHEN $2::jsonb IS NULL THEN settings - 'rateLimits' ELSE jsonb_set(settings, '{rateLimits}', $2::jsonb) END WHERE id = $1`,
      [orgId, limits === null ? null : JSON.stringify(limits)],
    );
    await this.caches.publish(tags.org(orgId));
  }

  /** Validates and stores one API key's overrides (null: the organization's and plan's apply). */
  async setKeyLimits(keyId: string, limits: Record<string, unknown> | null): Promise<void> {
    if (limits !== null) parseLimits(limits);
    await setKeyRateLimit(this.ds, keyId, limits);
    await this.caches.publish(tags.key(keyId));
  }

  private org(id: string) {
    return this.caches.orgs.load(id, async () => {
      const rows: { plan: string; limits: unknown }[] = await this.ds.query(`SELECT plan, settings->'rateLimits' AS limits FROM organizations WHERE id = $1`, [id]);
      const value = rows[0] ? { plan: rows[0].plan, limits: this.tolerant(rows[0].limits, `organization ${id}`) } : { plan: '', limits: null };
      return { value, tags: [tags.org(id)] };
    });
  }

  private key(id: string) {
    return this.caches.keys.load(id, async () => {
      return { value: this.tolerant(await keyRateLimit(this.ds, id), `api key ${id}`), tags: [tags.key(id)] };
    });
  }

  /** Stored overrides are validated on write; one edited by hand and invalid is ignored, loudly. */
  private tolerant(raw: unknown, what: string): Limits | null {
    if (raw === null || raw === undefined || typeof raw !== 'object') return null;
    const seen = this.parsed.get(raw);
    if (seen !== undefined) return seen;
    const r = categoryLimitsSchema.safeParse(raw);
    const value = r.success ? r.data : null;
    if (!r.success) this.logger.warn({ what, problem: r.error.issues[0]?.message }, 'ignoring invalid rate-limit override');
    this.parsed.set(raw, value);
    return value;
  }
}

export class InvalidLimitsError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

/** `{read: {limit, window}, ...}` or `{all: {...}}`; throws InvalidLimitsError naming the field. */
export function parseLimits(raw: unknown): Limits {
  const r = categoryLimitsSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new InvalidLimitsError(issue.message, issue.path.join('.'));
  }
  return r.data;
}
