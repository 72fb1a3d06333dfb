import type { DataSource } from 'typeorm';
import type { Cache } from '../storage/cache.js';
import { tags, type Invalidation } from '../storage/invalidation.js';
import { isUnsafeText } from '../http/unsafe-text.js';
import { OAuthClientEntity, type OAuthClient } from './entities.js';

/**
 * `oauth_clients` rows, cached in-process: every token request and every introspection needs the
 * client, and clients change rarely. A change anywhere invalidates `client:<id>` on every instance
 * (which also drops every cached credential of that client); unknown ids are remembered briefly.
 */
export class ClientRows {
  constructor(
    private readonly ds: DataSource,
    private readonly cache: Cache<OAuthClient | null>,
    private readonly invalidation: Invalidation,
  ) {}

  get(clientId: string): Promise<OAuthClient | null> {
    if (!clientId || clientId.length > 200 || isUnsafeText(clientId)) return Promise.resolve(null);
    return this.cache.load(clientId, async () => {
      const row = await this.ds.getRepository(OAuthClientEntity).findOneBy({ clientId });
      return { value: row, tags: [tags.client(clientId)], negative: !row };
    });
  }

  /** After a client changed or was deleted: forget it here at once, then on every other instance. */
  async changed(clientId: string): Promise<void> {
    await this.invalidation.publish(tags.client(clientId));
  }
}
