import type { Logger } from 'pino';
import type { KeyValueStore } from './kv.js';
import type { CacheRegistry } from './cache.js';

/** The one channel every instance listens on; a message is a space-separated list of tags. */
export const INVALIDATE_CHANNEL = 'invalidate';

/**
 * Invalidation tags: what a cached entry depends on. A change publishes the tags it affects.
 * Kept in one place so that the writer of a change and the reader of a cache agree on the names.
 */
export const tags = {
  /** An API key's row (revoked, rolled, narrowed, limits changed, creator changed). */
  key: (keyId: string) => `key:${keyId}`,
  /** An organization's settings, plan or limits. */
  org: (orgId: string) => `org:${orgId}`,
  /** A membership (role, team, removal). */
  member: (orgId: string, userId: string) => `member:${orgId}:${userId}`,
  /** An OAuth client's registration (secret, keys, scopes, deletion). */
  client: (clientId: string) => `client:${clientId}`,
  /** A grant, by the non-reversible tag JWT access tokens carry as `gid`. */
  grant: (grantTag: string) => `grant:${grantTag}`,
  /** One token (opaque token id, or a JWT's jti). */
  jti: (jti: string) => `jti:${jti}`,
};

/**
 * Invalidation across instances: the change is applied to this process's caches at once, then
 * published, and every other instance applies it on receipt (Redis pub/sub, milliseconds). Whenever
 * the subscription is (re)established a message may have been missed, so every cache is flushed:
 * after any Redis hiccup the caches start cold instead of stale.
 */
export class Invalidation {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly caches: CacheRegistry,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.kv.onSubscriptionReset(() => {
      this.caches.clear();
      this.logger.info('invalidation channel resubscribed: in-process caches flushed');
    });
    await this.kv.subscribe(INVALIDATE_CHANNEL, (message) => this.caches.invalidate(message.split(' ').filter(Boolean)));
  }

  /** Drops the tagged entries here at once and on every other instance. */
  async publish(...changed: string[]): Promise<void> {
    if (changed.length === 0) return;
    this.caches.invalidate(changed);
    try {
      await this.kv.publish(INVALIDATE_CHANNEL, changed.join(' '));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not publish a cache invalidation; other instances catch up within the cache lifetime');
    }
  }
}
