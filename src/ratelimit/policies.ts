import type { KeyValueStore } from '../storage/kv.js';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { categoryLimitsSchema, type Config, type RateLimitConfig } from '../config/schema.js';
import type { RateLimit } from './types.js';

type Limits = Record<string, RateLimitConfig>;

/** The pseudo-category `all`: one shared budget for every category not named (seed 003's "1000 per hour"). */
export const ALL = 'all';

/** Published when an organization's or a key's overrides change: `org:<id>` or `key:<id>`. */
export const POLICIES_CHANGED = 'ratelimit:policies';

/** The limit that applies to one category, and the budget (bucket) it counts against. */
export interface Resolved {
  limit: RateLimit;
  bucket: string;
}

interface Entry<T> {
  value: T;
  at: number;
}

/**
 * Which limit applies: the API key's override, then the organization's (`settings.rateLimits`), then
 * the plan's, then the deployment's defaults; at each level a named category wins over `all`.
 * Overrides are read from PostgreSQL once per TTL and kept in process; set*Limits() drops this
 * instance's copy at once and tells the others through POLICIES_CHANGED (pub/sub); the TTL only
 * bounds a missed message.
 */
export class RateLimitPolicies {
  private readonly orgs = new Map<string, Entry<{ plan: string; limits: Limits | null }>>();
  private readonly keys = new Map<string, Entry<Limits | null>>();

  constructor(
    private readonly ds: DataSource,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly kv?: KeyValueStore,
    private readonly ttlMs = 30_000,
  ) {
    void kv?.subscribe(POLICIES_CHANGED, (message) => {
      const [kind, id] = message.split(':');
      if ((kind === 'org' || kind === 'key') && id) this.forget(kind, id);
    });
  }

  async resolve(category: string, orgId: string | null | undefined, keyId?: string | null): Promise<Resolved | null> {
    const [org, key] = await Promise.all([orgId ? this.org(orgId) : undefined, keyId ? this.key(keyId) : undefined]);
    const levels: (Limits | null | undefined)[] = [
      key,
      org?.limits,
      org ? this.config.plans[org.plan]?.rateLimits : undefined,
      this.config.rateLimits.defaults,
    ];
    for (const l of levels) {
      if (!l) continue;
      if (l[category]) return { limit: l[category], bucket: category };
      if (l[ALL]) return { limit: l[ALL], bucket: ALL };
    }
    return null;
  }

  /** Drops cached overrides (an organization's or a key's). */
  private forget(kind: 'org' | 'key', id: string): void {
    (kind === 'org' ? this.orgs : this.keys).delete(id);
  }

  private async changed(kind: 'org' | 'key', id: string): Promise<void> {
    this.forget(kind, id);
    await this.kv?.publish(POLICIES_CHANGED, `${kind}:${id}`).catch((err) => this.logger.warn({ err }, 'could not announce a rate-limit change; other instances catch up within 30 s'));
  }

  /** Validates and stores an organization's overrides (null removes them). */
  async setOrgLimits(orgId: string, limits: Record<string, unknown> | null): Promise<void> {
    if (limits !== null) parseLimits(limits);
    await this.ds.query(
      `UPDATE organizations SET settings = CASE WHEN $2::jsonb IS NULL THEN settings - 'rateLimits' ELSE jsonb_set(settings, '{rateLimits}', $2::jsonb) END WHERE id = $1`,
      [orgId, limits === null ? null : JSON.stringify(limits)],
    );
    await this.changed('org', orgId);
  }

  /** Validates and stores one API key's overrides (null: the organization's and plan's apply). */
  async setKeyLimits(keyId: string, limits: Record<string, unknown> | null): Promise<void> {
    if (limits !== null) parseLimits(limits);
    await this.ds.query(`UPDATE api_keys SET rate_limit = $2::jsonb WHERE id = $1`, [keyId, limits === null ? null : JSON.stringify(limits)]);
    await this.changed('key', keyId);
  }

  private async org(id: string) {
    const hit = this.orgs.get(id);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const rows: { plan: string; limits: unknown }[] = await this.ds.query(`SELECT plan, settings->'rateLimits' AS limits FROM organizations WHERE id = $1`, [id]);
    const value = rows[0] ? { plan: rows[0].plan, limits: this.tolerant(rows[0].limits, `organization ${id}`) } : { plan: '', limits: null };
    this.orgs.set(id, { value, at: Date.now() });
    return value;
  }

  private async key(id: string) {
    const hit = this.keys.get(id);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const rows: { rate_limit: unknown }[] = await this.ds.query(`SELECT rate_limit FROM api_keys WHERE id = $1`, [id]);
    const value = this.tolerant(rows[0]?.rate_limit, `api key ${id}`);
    this.keys.set(id, { value, at: Date.now() });
    return value;
  }

  /** Stored overrides are validated on write; one edited by hand and invalid is ignored, loudly. */
  private tolerant(raw: unknown, what: string): Limits | null {
    if (raw === null || raw === undefined) return null;
    const r = categoryLimitsSchema.safeParse(raw);
    if (r.success) return r.data;
    this.logger.warn({ what, problem: r.error.issues[0]?.message }, 'ignoring invalid rate-limit override');
    return null;
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
