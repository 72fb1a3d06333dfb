import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { hashApiKey, hashesEqual } from './api-key-hash.js';
import { apiKeysByHashes, apiKeyById, type ApiKeyVerificationRow } from '../storage/queries/api-key-verification.js';
import type { Cache } from '../storage/cache.js';
import { tags } from '../storage/invalidation.js';
import type { CredentialFailure, Resolution } from './types.js';

export type ApiKeyRow = ApiKeyVerificationRow;

/** The invalidation tags of everything a key's verification read. */
export function keyTags(row: ApiKeyRow): string[] {
  return [tags.key(row.id), tags.org(row.org_id), ...(row.created_by ? [tags.member(row.org_id, row.created_by)] : [])];
}

/**
 * A fingerprint of one secret of a key, carried by the tokens exchanged from it (`kfp`): a token
 * bought with a secret dies when that secret does (revoked, rolled with no grace, grace over), without
 * putting anything of the secret's hash in the token.
 */
export function secretFingerprint(keyHash: string): string {
  return createHash('sha256').update(`kfp:${keyHash}`).digest('base64url').slice(0, 22);
}

interface Lookup {
  hash: string;
  done: (row: ApiKeyRow | null) => void;
  failed: (err: unknown) => void;
}

/** Secrets looked up in one statement, at most. */
const BATCH = 64;

/**
 * API key rows for verification: by the HMAC of a presented key (the key itself), or by id (a token
 * exchanged from the key). Rows are cached by id and tagged with what they read (key, organization,
 * creator's membership), so any of those changing drops them on every instance.
 */
export class ApiKeyRows {
  private active = 0;
  private queue: Lookup[] = [];
  private scheduled = false;

  constructor(
    private readonly ds: DataSource,
    private readonly pepper: string,
    private readonly byId: Cache<ApiKeyRow | null>,
    /**
     * Look-up statements in flight at once, at most: a flood of well-formed unknown keys (each one a
     * miss) waits here instead of taking every pooled connection from the rest.
     */
    private readonly maxConcurrentLookups = 4,
  ) {}

  /**
   * The key a presented secret belongs to (current or previous secret), and its hash. Secrets asked
   * for in the same turn of the event loop, and while the statements in flight run, are looked up
   * together: a burst of cold keys costs a few round trips to PostgreSQL, not one each.
   */
  async forSecret(presented: string): Promise<{ row: ApiKeyRow | null; hash: string }> {
    const hash = hashApiKey(this.pepper, presented);
    const row = await new Promise<ApiKeyRow | null>((done, failed) => {
      this.queue.push({ hash, done, failed });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.drain();
        });
      }
    });
    return { row, hash };
  }

  private drain(): void {
    while (this.queue.length > 0 && this.active < this.maxConcurrentLookups) {
      const batch = this.queue.splice(0, BATCH);
      this.active++;
      apiKeysByHashes(this.ds, [...new Set(batch.map((l) => l.hash))])
        .then((rows) => {
          const byHash = new Map<string, ApiKeyRow>();
          for (const r of rows) {
            byHash.set(r.key_hash, r);
            if (r.previous_key_hash) byHash.set(r.previous_key_hash, r);
          }
          for (const l of batch) l.done(byHash.get(l.hash) ?? null);
        }, (err) => {
          for (const l of batch) l.failed(err);
        })
        .finally(() => {
          this.active--;
          this.drain();
        });
    }
  }

  get(id: string): Promise<ApiKeyRow | null> {
    return this.byId.load(id, async () => {
      const row = await apiKeyById(this.ds, id);
      return { value: row, tags: row ? keyTags(row) : [tags.key(id)], negative: !row };
    });
  }
}

type Judged = { ok: true; matched: 'current' | 'previous' } | CredentialFailure;

/**
 * The one judgement of a key's state, for the key itself (`hash` of the presented secret) and for
 * tokens derived from it (`fingerprint` of the secret they were bought with; undefined for tokens
 * issued before fingerprints existed, which then only need a live key).
 */
export function judgeKey(row: ApiKeyRow, secret: { hash: string } | { fingerprint: string | undefined }, now: number): Judged {
  const found = { keyId: row.id, orgId: row.org_id };
  if (row.revoked_at) return { ok: false, status: 'revoked', ...found };
  // A key acts for its creator: once the creator is no longer a member of the key's organization,
  // the key and everything derived from it are refused (keys made by the CLI have no creator).
  if (row.created_by && !row.creator_role) return { ok: false, status: 'revoked', ...found };
  const graceOpen = !!row.previous_expires_at && row.previous_expires_at.getTime() > now;
  let matched: 'current' | 'previous';
  if ('hash' in secret) {
    if (hashesEqual(secret.hash, row.key_hash)) matched = 'current';
    else if (row.previous_key_hash && hashesEqual(secret.hash, row.previous_key_hash)) {
      if (!graceOpen) return { ok: false, status: 'rolled', ...found };
      matched = 'previous';
    } else return { ok: false, status: 'unknown' };
  } else if (secret.fingerprint === undefined || secret.fingerprint === secretFingerprint(row.key_hash)) matched = 'current';
  else if (row.previous_key_hash && secret.fingerprint === secretFingerprint(row.previous_key_hash)) {
    if (!graceOpen) return { ok: false, status: 'rolled', ...found };
    matched = 'previous';
  } else return { ok: false, status: 'rolled', ...found };
  if (row.expires_at && row.expires_at.getTime() <= now) return { ok: false, status: 'expired', ...found, expiredAt: row.expires_at };
  return { ok: true, matched };
}

export type { Resolution };
