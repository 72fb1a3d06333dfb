import { Redis } from 'ioredis';
import type { KeyValueStore } from './kv.js';

/**
 * Redis implementation. Every key and channel carries the configured prefix, so deployments (and
 * test files) sharing one Redis never see each other's data.
 */
export class RedisKeyValueStore implements KeyValueStore {
  readonly kind = 'redis' as const;
  readonly client: Redis;
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, ((m: string) => void)[]>();
  private readonly resetListeners: (() => void)[] = [];

  constructor(
    readonly url: string,
    readonly prefix: string,
  ) {
    this.client = new Redis(url, { keyPrefix: prefix, maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false });
    this.client.on('error', () => {}); // surfaced through ping()/readyz, not as unhandled events
  }

  async get(key: string) {
    return this.client.get(key);
  }
  async mGet(keys: string[]) {
    return keys.length ? this.client.mget(...keys) : [];
  }
  async set(key: string, value: string, ttlSeconds?: number) {
    if (ttlSeconds === undefined) await this.client.set(key, value);
    else await this.client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
  }
  async setNX(key: string, value: string, ttlSeconds: number) {
    const r = await this.client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX');
    return r === 'OK';
  }
  async getDel(key: string) {
    return this.client.getdel(key);
  }
  async del(...keys: string[]) {
    if (keys.length) await this.client.del(...keys);
  }
  async sAdd(key: string, member: string, ttlSeconds: number) {
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    // GT: only ever lengthen the set's life (Redis 7).
    await this.client.multi().sadd(key, member).expire(key, ttl, 'GT').expire(key, ttl, 'NX').exec();
  }
  async sMembers(key: string) {
    return this.client.smembers(key);
  }
  async incrBy(key: string, by: number, ttlSeconds?: number) {
    if (ttlSeconds === undefined) return this.client.incrby(key, by);
    const res = await this.client.multi().incrby(key, by).expire(key, Math.max(1, Math.ceil(ttlSeconds)), 'NX').exec();
    return Number(res?.[0]?.[1]);
  }
  async publish(channel: string, message: string) {
    await this.client.publish(this.prefix + channel, message);
  }
  async subscribe(channel: string, onMessage: (message: string) => void) {
    if (!this.subscriber) {
      this.subscriber = new Redis(this.url, { maxRetriesPerRequest: null });
      this.subscriber.on('error', () => {});
      this.subscriber.on('message', (ch: string, msg: string) => {
        for (const h of this.handlers.get(ch) ?? []) h(msg);
      });
      // Messages published while the subscriber was away are lost. After a reconnect, subscribe again
      // explicitly (a no-op when ioredis already did) and, once Redis confirms, tell the listeners, so
      // they drop whatever they could have missed.
      const sub = this.subscriber;
      let connectedBefore = false;
      sub.on('ready', () => {
        if (!connectedBefore) {
          connectedBefore = true;
          return;
        }
        const channels = [...this.handlers.keys()];
        const resubscribed = channels.length ? sub.subscribe(...channels) : Promise.resolve(0);
        resubscribed.then(
          () => {
            for (const l of this.resetListeners) l();
          },
          () => {},
        );
      });
    }
    const full = this.prefix + channel;
    const list = this.handlers.get(full) ?? [];
    list.push(onMessage);
    this.handlers.set(full, list);
    if (list.length === 1) {
      const subscribed = this.subscriber.subscribe(full).then(() => undefined);
      subscribed.catch(() => {});
      // Redis down at start: do not block startup (readyz reports it). ioredis keeps the SUBSCRIBE
      // queued and sends it, and re-sends it after every reconnect (autoResubscribe).
      const sub = this.subscriber;
      const failed = new Promise<void>((resolve) => sub.once('error', () => resolve()));
      await Promise.race([subscribed, failed]);
    }
  }
  onSubscriptionReset(listener: () => void) {
    this.resetListeners.push(listener);
  }
  async ping() {
    try {
      return (await Promise.race([
        this.client.ping(),
        new Promise<string>((_, rej) => setTimeout(() => rej(new Error('timeout')), 1000).unref()),
      ])) === 'PONG';
    } catch {
      return false;
    }
  }
  async close() {
    this.client.disconnect();
    this.subscriber?.disconnect();
  }
}
