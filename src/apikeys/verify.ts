import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { KeyValueStore } from '../storage/kv.js';
import type { Role } from '../accounts/entities.js';
import { parseApiKey } from './format.js';
import { hashApiKey, hashesEqual } from './hash.js';
import type { LastUsedTracker } from './last-used.js';

/** What a valid key carries, as the hot path needs it (no secret, no hash). */
export interface VerifiedApiKey {
  id: string;
  orgId: string;
  teamId: string | null;
  workflowId: string | null;
  name: string;
  scopes: string[];
  /** The user the key acts for (its creator); null for keys made by the CLI or the system. */
  createdBy: string | null;
  /** The creator's current role in the key's organization; null when there is no creator or no membership. */
  creatorRole: Role | null;
  expiresAt: Date | null;
  rateLimit: Record<string, unknown> | null;
  orgPlan: string;
  /** organizations.settings.allowQueryApiKey (default true). */
  orgAllowsQueryKey: boolean;
  /** 'previous': the secret that was replaced by a roll and is still in its grace period. */
  matched: 'current' | 'previous';
}

export type ApiKeyFailureReason = 'malformed' | 'unknown' | 'revoked' | 'rolled' | 'expired';

export type ApiKeyVerification =
  | { ok: true; key: VerifiedApiKey }
  | { ok: false; code: 'INVALID_API_KEY'; reason: Exclude<ApiKeyFailureReason, 'expired'>; keyId?: string }
  | { ok: false; code: 'EXPIRED_API_KEY'; reason: 'expired'; keyId: string; expiredAt: Date };

interface Row {
  id: string;
  org_id: string;
  team_id: string | null;
  workflow_id: string | null;
  name: string;
  scopes: string[];
  key_hash: string;
  previous_key_hash: string | null;
  previous_expires_at: Date | null;
  created_by: string | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  rate_limit: Record<string, unknown> | null;
  org_plan: string;
  allow_query: boolean | null;
  creator_role: Role | null;
}

interface CacheEntry {
  row: Row | null;
  at: number;
}

export const INVALIDATE_CHANNEL = 'apikeys:invalidate';

export interface VerifierOptions {
  /** How long a found key is trusted without asking PostgreSQL; pub/sub invalidation cuts it short. */
  positiveTtlMs?: number;
  /** How long an unknown (checksum-valid) key is remembered as unknown. */
  negativeTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/**
 * The hot path: format and checksum (no store), HMAC, in-process cache, PostgreSQL only on a miss.
 *
 * Revocation, roll, scope change and delete call `invalidate(id)`, which drops the entry here and
 * publishes the id on `apikeys:invalidate`; every instance drops its entry on receipt, so a revoked
 * key is refused everywhere within the pub/sub latency (milliseconds). Should a message be lost
 * (Redis briefly away), the TTL bounds staleness. A lookup that raced with an invalidation is not
 * cached (the epoch check), so a stale row cannot be put back after the message arrived.
 */
export class ApiKeyVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly hashesById = new Map<string, Set<string>>();
  private epoch = 0;
  private readonly dropListeners: ((keyId: string) => void)[] = [];
  private readonly positiveTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly ds: DataSource,
    private readonly kv: KeyValueStore,
    private readonly pepper: string,
    private readonly lastUsed: LastUsedTracker,
    private readonly logger: Logger,
    opts: VerifierOptions = {},
  ) {
    this.positiveTtlMs = opts.positiveTtlMs ?? 30_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 10_000;
    this.maxEntries = opts.maxEntries ?? 50_000;
    this.now = opts.now ?? Date.now;
  }

  /** Subscribes to invalidations from other instances; call once at startup. */
  async start(): Promise<void> {
    await this.kv.subscribe(INVALIDATE_CHANNEL, (id) => this.dropLocal(id));
  }

  /**
   * Verifies a presented key. Never throws for a bad key (the answer says why); throws only when
   * PostgreSQL cannot be reached. A successful verification counts as a use (last_used_at).
   */
  async verify(presented: string, opts: { touch?: boolean } = {}): Promise<ApiKeyVerification> {
    if (!parseApiKey(presented)) return { ok: false, code: 'INVALID_API_KEY', reason: 'malformed' };
    const hash = hashApiKey(this.pepper, presented);
    const row = await this.lookup(hash);
    if (!row) return { ok: false, code: 'INVALID_API_KEY', reason: 'unknown' };
    const now = this.now();
    if (row.revoked_at) return { ok: false, code: 'INVALID_API_KEY', reason: 'revoked', keyId: row.id };
    // A key acts for its creator: once the creator is no longer a member of the key's organization,
    // the key is refused (keys made by the CLI or the system have no creator).
    if (row.created_by && !row.creator_role) return { ok: false, code: 'INVALID_API_KEY', reason: 'revoked', keyId: row.id };
    let matched: 'current' | 'previous';
    if (hashesEqual(hash, row.key_hash)) matched = 'current';
    else if (row.previous_key_hash && hashesEqual(hash, row.previous_key_hash)) {
      if (!row.previous_expires_at || row.previous_expires_at.getTime() <= now) {
        return { ok: false, code: 'INVALID_API_KEY', reason: 'rolled', keyId: row.id };
      }
      matched = 'previous';
    } else return { ok: false, code: 'INVALID_API_KEY', reason: 'unknown' };
    if (row.expires_at && row.expires_at.getTime() <= now) {
      return { ok: false, code: 'EXPIRED_API_KEY', reason: 'expired', keyId: row.id, expiredAt: row.expires_at };
    }
    if (opts.touch !== false) this.lastUsed.touch(row.id, now);
    return {
      ok: true,
      key: {
        id: row.id,
        orgId: row.org_id,
        teamId: row.team_id,
        workflowId: row.workflow_id,
        name: row.name,
        scopes: row.scopes,
        createdBy: row.created_by,
        creatorRole: row.creator_role,
        expiresAt: row.expires_at,
        rateLimit: row.rate_limit,
        orgPlan: row.org_plan,
        orgAllowsQueryKey: row.allow_query !== false,
        matched,
      },
    };
  }

  /** Counts a use of a key verified earlier (callers that cache verified answers themselves). */
  recordUse(keyId: string): void {
    this.lastUsed.touch(keyId, this.now());
  }

  /** Drops the key from every instance's cache (this one at once, the others via pub/sub). */
  async invalidate(keyId: string): Promise<void> {
    this.dropLocal(keyId);
    try {
      await this.kv.publish(INVALIDATE_CHANNEL, keyId);
    } catch (err) {
      this.logger.warn({ err, keyId }, `could not publish api key invalidation; other instances catch up within ${this.positiveTtlMs} ms`);
    }
  }

  /** Called whenever a key is dropped here (locally or on another instance's word): for other caches. */
  onDrop(listener: (keyId: string) => void): void {
    this.dropListeners.push(listener);
  }

  private dropLocal(keyId: string): void {
    for (const l of this.dropListeners) l(keyId);
    this.epoch++;
    for (const h of this.hashesById.get(keyId) ?? []) this.cache.delete(h);
    this.hashesById.delete(keyId);
  }

  private async lookup(hash: string): Promise<Row | null> {
    const now = this.now();
    const hit = this.cache.get(hash);
    if (hit && now - hit.at < (hit.row ? this.positiveTtlMs : this.negativeTtlMs)) return hit.row;
    const epoch = this.epoch;
    const rows: Row[] = await this.ds.query(
      `SELECT k.id, k.org_id, k.team_id, k.workflow_id, k.name, k.scopes, k.key_hash, k.previous_key_hash,
              k.previous_expires_at, k.created_by, k.expires_at, k.revoked_at, k.rate_limit,
              o.plan AS org_plan, (o.settings->>'allowQueryApiKey')::boolean AS allow_query, m.role AS creator_role
         FROM api_keys k
         JOIN organizations o ON o.id = k.org_id
         LEFT JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.created_by
        WHERE k.key_hash = $1 OR k.previous_key_hash = $1`,
      [hash],
    );
    const row = rows[0] ?? null;
    if (this.epoch === epoch) this.remember(hash, row);
    return row;
  }

  private remember(hash: string, row: Row | null): void {
    if (this.cache.size >= this.maxEntries) {
      // Oldest first (Map keeps insertion order): a cheap bound, not an LRU.
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.delete(hash);
    this.cache.set(hash, { row, at: this.now() });
    if (row) {
      const set = this.hashesById.get(row.id) ?? new Set<string>();
      set.add(hash);
      this.hashesById.set(row.id, set);
    }
  }
}
