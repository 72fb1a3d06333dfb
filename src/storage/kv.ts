/**
 * The short-lived / hot store. Redis in deployments; an in-process map in the single-process
 * development mode. Both implement exactly this interface, and the same tests run against both.
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
   * Told whenever the subscription is re-established after a disconnect, i.e. whenever messages may
   * have been missed (the in-process store never loses one).
   */
  onSubscriptionReset?(listener: () => void): void;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
