/**
 * The short-lived / hot store. Redis in deployments; an in-process map in the single-process
 * development mode. Both implement exactly this interface, and the same tests run against both.
 *
 * Redis may be one server, a Sentinel group or a Cluster. On a Cluster the keys of one multi-key
 * call may live on different nodes: the store splits such calls itself (mGet, del), so callers never
 * need to know; only a caller that needs several keys changed atomically has to put them in one slot
 * with a hash tag (the key scheme is in redis-kv.ts).
 */
export interface KeyValueStore {
  readonly kind: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  /** Several keys in one round trip. */
  mGet(keys: string[]): Promise<(string | null)[]>;
  /** ttlSeconds omitted: no expiry. */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  /** Set only if absent; true when this call stored it (single-use checks). */
  setNX(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /** Get and delete in one step (consume-once semantics). */
  getDel(key: string): Promise<string | null>;
  del(...keys: string[]): Promise<void>;
  /** Add a member to a set, extending the set's life to at least ttlSeconds. */
  sAdd(key: string, member: string, ttlSeconds: number): Promise<void>;
  sMembers(key: string): Promise<string[]>;
  incrBy(key: string, by: number, ttlSeconds?: number): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  /**
   * Told whenever subscriptions were re-established after messages may have been missed: the
   * subscriber reconnected (Redis restart, killed connection, Sentinel failover, Cluster node
   * change), or Redis confirmed a subscription only after `subscribe()` had returned without it.
   * Runs after Redis confirmed the subscriptions again, so messages published afterwards arrive.
   * Anything cached on the strength of "a message will tell me" must be dropped here. The in-process
   * store never loses messages and never calls it. Returns a function that removes the listener.
   */
  onSubscriptionReset(listener: () => void): () => void;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
