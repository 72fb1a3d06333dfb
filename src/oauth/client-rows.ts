import type { DataSource } from 'typeorm';
import type { KeyValueStore } from '../storage/kv.js';
import { OAuthClientEntity, type OAuthClient } from './entities.js';

/** Published after any change to a client (secret, keys, scopes, deletion); every instance drops its copy. */
export const CLIENTS_CHANGED = 'clients:changed';

/**
 * `oauth_clients` rows, cached in-process: every token request and every introspection needs the
 * client, and clients change rarely. A change anywhere publishes CLIENTS_CHANGED and every instance
 * forgets its copies at once; the TTL only bounds memory and a missed message. A look-up that raced
 * with an invalidation is not cached (generation check).
 */
export class ClientRows {
  private readonly cache = new Map<string, { row: OAuthClient | null; until: number }>();
  private generation = 0;

  constructor(
    private readonly ds: DataSource,
    private readonly kv: KeyValueStore,
    private readonly ttlMs = 30_000,
  ) {
    void kv.subscribe(CLIENTS_CHANGED, () => this.forgetAll());
  }

  /** After a client changed: forget here at once, then tell every other instance. */
  async changed(): Promise<void> {
    this.forgetAll();
    await this.kv.publish(CLIENTS_CHANGED, 'changed').catch(() => {});
  }

  async get(clientId: string): Promise<OAuthClient | null> {
    const hit = this.cache.get(clientId);
    if (hit && hit.until > Date.now()) return hit.row;
    const gen = this.generation;
    const row = await this.ds.getRepository(OAuthClientEntity).findOneBy({ clientId });
    if (gen === this.generation) {
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(clientId, { row, until: Date.now() + this.ttlMs });
    }
    return row;
  }

  forgetAll(): void {
    this.generation++;
    this.cache.clear();
  }
}
