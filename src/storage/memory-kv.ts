import { EventEmitter } from 'node:events';
import type { KeyValueStore } from './kv.js';

interface Entry {
  value: string | Set<string>;
  expiresAt: number | undefined;
}

/** In-process store for the single-process development mode: one process, so no sharing needed. */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly kind = 'memory' as const;
  private readonly map = new Map<string, Entry>();
  private readonly bus = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.bus.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  private live(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  private sweep(): void {
    for (const key of this.map.keys()) this.live(key);
  }

  private exp(ttlSeconds?: number): number | undefined {
    return ttlSeconds === undefined ? undefined : this.now() + ttlSeconds * 1000;
  }

  async get(key: string) {
    const e = this.live(key);
    return typeof e?.value === 'string' ? e.value : null;
  }
  async mGet(keys: string[]) {
    return Promise.all(keys.map((k) => this.get(k)));
  }
  async set(key: string, value: string, ttlSeconds?: number) {
    this.map.set(key, { value, expiresAt: this.exp(ttlSeconds) });
  }
  async setNX(key: string, value: string, ttlSeconds: number) {
    if (this.live(key)) return false;
    this.map.set(key, { value, expiresAt: this.exp(ttlSeconds) });
    return true;
  }
  async getDel(key: string) {
    // No await between the read and the delete: two concurrent consumers must not both get the value.
    const e = this.live(key);
    this.map.delete(key);
    return typeof e?.value === 'string' ? e.value : null;
  }
  async del(...keys: string[]) {
    for (const k of keys) this.map.delete(k);
  }
  async sAdd(key: string, member: string, ttlSeconds: number) {
    const e = this.live(key);
    const set = e && e.value instanceof Set ? e.value : new Set<string>();
    set.add(member);
    const expiresAt = Math.max(e?.expiresAt ?? 0, this.exp(ttlSeconds)!);
    this.map.set(key, { value: set, expiresAt });
  }
  async sMembers(key: string) {
    const e = this.live(key);
    return e && e.value instanceof Set ? [...e.value] : [];
  }
  async incrBy(key: string, by: number, ttlSeconds?: number) {
    const e = this.live(key);
    const n = (typeof e?.value === 'string' ? Number(e.value) : 0) + by;
    this.map.set(key, { value: String(n), expiresAt: e?.expiresAt ?? this.exp(ttlSeconds) });
    return n;
  }
  async publish(channel: string, message: string) {
    queueMicrotask(() => this.bus.emit(channel, message));
  }
  async subscribe(channel: string, onMessage: (message: string) => void) {
    this.bus.on(channel, onMessage);
  }
  onSubscriptionReset(_listener: () => void) {
    // One process, no connection to lose: no message is ever missed.
    return () => {};
  }
  async ping() {
    return true;
  }
  async close() {
    clearInterval(this.sweeper);
    this.bus.removeAllListeners();
    this.map.clear();
  }
}
