import { createHash } from 'node:crypto';
import type { KeyValueStore } from '../storage/kv.js';
import type { ActiveAnswer } from './types.js';

/** Published by anything that revokes or restricts a credential; every instance flushes. */
export const CREDENTIALS_REVOKED = 'credentials:revoked';

/**
 * Positive introspection answers, in-process, keyed by the SHA-256 of the credential (the raw value
 * is never kept as a key). Revocations are rare next to introspections, so a revocation anywhere
 * flushes the whole cache on every instance (Redis pub/sub, milliseconds); the generation counter
 * keeps a look-up that raced with a flush from re-inserting a stale answer.
 */
export class AnswerCache {
  private readonly map = new Map<string, { answer: ActiveAnswer; until: number }>();
  private generation = 0;

  constructor(
    kv: KeyValueStore,
    private readonly ttlMs: number,
    private readonly maxEntries = 50_000,
  ) {
    void kv.subscribe(CREDENTIALS_REVOKED, () => this.flush());
  }

  static keyOf(token: string): string {
    return createHash('sha256').update(token).digest('base64url');
  }

  get(key: string): ActiveAnswer | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.until <= Date.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e.answer;
  }

  /** The generation to pass to set(): take it before the look-up. */
  get version(): number {
    return this.generation;
  }

  set(key: string, answer: ActiveAnswer, version: number): void {
    if (version !== this.generation) return;
    const byExpiry = answer.exp ? answer.exp * 1000 - Date.now() : this.ttlMs;
    const ttl = Math.min(this.ttlMs, byExpiry);
    if (ttl <= 0) return;
    if (this.map.size >= this.maxEntries) {
      // Drop the oldest insertions (Map keeps insertion order).
      let n = Math.ceil(this.maxEntries / 10);
      for (const k of this.map.keys()) {
        this.map.delete(k);
        if (--n === 0) break;
      }
    }
    this.map.set(key, { answer, until: Date.now() + ttl });
  }

  flush(): void {
    this.generation++;
    this.map.clear();
  }
}
