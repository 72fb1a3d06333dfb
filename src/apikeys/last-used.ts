import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { recordLastUses } from '../storage/queries/api-keys.js';

/**
 * Keeps `last_used_at` within one interval (API_KEY_LAST_USED_FLUSH_MS, a minute by default) of the
 * truth without a write per request.
 *
 * Each use is a Map.set in this process: no I/O at all on the hot path (the rate limiter is
 * allowed one Redis round trip per request, and this should not take it). Every `intervalMs`
 * the pending times go to PostgreSQL in one statement, and on shutdown (close()) what is pending is
 * written before the pools close. The statement only moves a key's time forward by at least one
 * interval: a busy key's row is rewritten at most once per interval across every instance and
 * worker (each write needs a time one interval past the stored one), so flushes do not leave a dead
 * tuple per used key per instance per interval. A crash (SIGKILL, OOM) loses at most one interval of
 * uses, which is within the promise. Listings merge the pending times of this instance, so a key
 * used here shows at once; other instances' uses show after their next flush.
 */
export class LastUsedTracker {
  private pending = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly ds: DataSource,
    private readonly logger: Logger,
    readonly intervalMs = 60_000,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  touch(keyId: string, at = Date.now()): void {
    const prev = this.pending.get(keyId);
    if (prev === undefined || at > prev) this.pending.set(keyId, at);
  }

  /** The not-yet-flushed use of a key in this process, if any. */
  pendingFor(keyId: string): Date | undefined {
    const t = this.pending.get(keyId);
    return t === undefined ? undefined : new Date(t);
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = (async () => {
      try {
        const ids = [...batch.keys()];
        const times = ids.map((id) => new Date(batch.get(id)!).toISOString());
        await recordLastUses(this.ds, ids, times, this.intervalMs);
      } catch (err) {
        // Put the batch back (newer uses win) and try again next interval.
        for (const [id, t] of batch) this.touch(id, t);
        this.logger.warn({ err }, 'could not flush api key last_used_at; will retry');
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
