import { createHash, randomBytes } from 'node:crypto';
import type { KeyValueStore } from '../storage/kv.js';

/** A signed-in dashboard user. The record lives in the key-value store; the cookie holds only its id. */
export interface DashboardSession {
  userId: string;
  createdAt: number;
  lastSeenAt: number;
}

export interface SessionTimeouts {
  /** Ends a session nobody used for this long. */
  idleSeconds: number;
  /** Ends every session this long after sign-in, used or not. */
  absoluteSeconds: number;
}


/** Refresh the idle deadline at most this often (one KV write per minute per session, not per request). */
const TOUCH_EVERY_MS = 60_000;

/**
 * Server-side dashboard sessions. The id is 256 random bits; the store key is its SHA-256, so a
 * copy of the store holds no usable session id. Sign-out deletes the record: the cookie is then
 * worthless everywhere at once.
 */
export class SessionStore {
  constructor(
    private readonly kv: KeyValueStore,
    /** config accounts.dashboardSession*Seconds. */
    readonly timeouts: SessionTimeouts,
    private readonly now: () => number = Date.now,
  ) {}

  private key(id: string): string {
    return `dash:session:${createHash('sha256').update(id).digest('hex')}`;
  }

  async create(userId: string): Promise<{ id: string; session: DashboardSession }> {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const session = { userId, createdAt: now, lastSeenAt: now };
    await this.kv.set(this.key(id), JSON.stringify(session), this.timeouts.idleSeconds);
    return { id, session };
  }

  /** The live session for an id, extending its idle deadline; null when absent, idle or too old. */
  async get(id: string | undefined): Promise<DashboardSession | null> {
    if (!id || !/^[\w-]{43}$/.test(id)) return null;
    const raw = await this.kv.get(this.key(id));
    if (!raw) return null;
    const s = JSON.parse(raw) as DashboardSession;
    const now = this.now();
    const absoluteEnd = s.createdAt + this.timeouts.absoluteSeconds * 1000;
    if (now >= absoluteEnd || now >= s.lastSeenAt + this.timeouts.idleSeconds * 1000) {
      await this.kv.del(this.key(id));
      return null;
    }
    if (now - s.lastSeenAt >= TOUCH_EVERY_MS) {
      s.lastSeenAt = now;
      const ttl = Math.max(1, Math.min(this.timeouts.idleSeconds, Math.ceil((absoluteEnd - now) / 1000)));
      await this.kv.set(this.key(id), JSON.stringify(s), ttl);
    }
    return s;
  }

  async destroy(id: string | undefined): Promise<void> {
    if (id) await this.kv.del(this.key(id));
  }
}
