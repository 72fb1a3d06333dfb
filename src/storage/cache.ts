/**
 * The one in-process cache type, and the registry every cache belongs to.
 *
 * Each entry carries invalidation tags (`key:<id>`, `client:<id>`, `grant:<tag>`, `member:<org>:<user>`,
 * ...). A change anywhere is announced once on the invalidation channel (./invalidation.ts) and every
 * instance drops exactly the entries carrying that tag, in every cache, instead of flushing whole
 * caches. The generation guard keeps a look-up that raced with an invalidation from putting back what
 * was read before the change: `load()` reads the generation before the look-up and `set()` refuses a
 * stale one. Loads of the same key share one promise (no stampede on a cold key).
 *
 * Bounds: `max` entries (oldest insertions go first: a cheap bound, not an LRU) and a time to live
 * that is also the staleness bound when an invalidation message is lost (the registry flushes
 * everything when the channel (re)subscribes, so a lost message can only matter while the subscriber
 * is disconnected).
 */
export interface CacheOptions {
  max: number;
  ttlMs: number;
  /** Time to live of entries set with `negative: true` (unknown credentials), usually shorter. */
  negativeTtlMs?: number;
}

export interface SetOptions {
  tags?: readonly string[];
  /** Shorter than the cache's own TTL (e.g. a token expiring sooner); never longer. */
  ttlMs?: number;
  negative?: boolean;
}

/** What a loader returns: the value and how to keep it. `ttlMs <= 0` means do not keep it. */
export interface Loaded<V> extends SetOptions {
  value: V;
  /** false: answer with it, never keep it (e.g. an answer that depends on who asks). */
  cache?: boolean;
}

interface Entry<V> {
  value: V;
  until: number;
  tags: readonly string[] | undefined;
}

export interface CacheStats {
  name: string;
  size: number;
  hits: number;
  misses: number;
}

export class Cache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private readonly byTag = new Map<string, Set<string>>();
  private readonly inflight = new Map<string, Promise<V>>();
  private gen = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly name: string,
    private readonly o: CacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** The live entry's value, counting a hit or a miss. */
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e && e.until > this.now()) {
      this.hits++;
      return e.value;
    }
    if (e) this.delete(key);
    this.misses++;
    return undefined;
  }

  /** The generation to hand to set() for a value read now. */
  get version(): number {
    return this.gen;
  }

  get size(): number {
    return this.map.size;
  }

  set(key: string, value: V, version: number, opts: SetOptions = {}): void {
    if (version !== this.gen) return;
    const base = opts.negative ? (this.o.negativeTtlMs ?? this.o.ttlMs) : this.o.ttlMs;
    const ttl = Math.min(base, opts.ttlMs ?? base);
    if (!(ttl > 0)) return;
    if (this.map.has(key)) this.delete(key);
    else if (this.map.size >= this.o.max) this.evict(Math.max(1, Math.ceil(this.o.max / 10)));
    this.map.set(key, { value, until: this.now() + ttl, tags: opts.tags });
    for (const t of opts.tags ?? []) {
      let set = this.byTag.get(t);
      if (!set) this.byTag.set(t, (set = new Set()));
      set.add(key);
    }
  }

  /**
   * The cached value, or the loader's, kept as the loader says. Concurrent misses of one key wait for
   * the same load; a load that raced with an invalidation answers but is not kept.
   */
  async load(key: string, loader: () => Promise<Loaded<V>>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const version = this.gen;
    const p = loader().then(
      (r) => {
        if (r.cache !== false) this.set(key, r.value, version, r);
        return r.value;
      },
    );
    this.inflight.set(key, p);
    try {
      return await p;
    } finally {
      this.inflight.delete(key);
    }
  }

  /** Drops every entry carrying the tag. */
  invalidate(tag: string): void {
    this.gen++;
    const keys = this.byTag.get(tag);
    if (!keys) return;
    for (const k of [...keys]) this.delete(k);
  }

  clear(): void {
    this.gen++;
    this.map.clear();
    this.byTag.clear();
  }

  stats(): CacheStats {
    return { name: this.name, size: this.map.size, hits: this.hits, misses: this.misses };
  }

  /** Drops one entry (a fact found wrong by whoever kept it). */
  delete(key: string): void {
    const e = this.map.get(key);
    if (!e) return;
    this.map.delete(key);
    for (const t of e.tags ?? []) {
      const set = this.byTag.get(t);
      if (!set) continue;
      set.delete(key);
      if (set.size === 0) this.byTag.delete(t);
    }
  }

  private evict(n: number): void {
    for (const k of this.map.keys()) {
      this.delete(k);
      if (--n === 0) break;
    }
  }
}

/** Every cache of the process, so that one invalidation reaches all of them. */
export class CacheRegistry {
  private readonly caches: Cache<unknown>[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  create<V>(name: string, opts: CacheOptions): Cache<V> {
    const c = new Cache<V>(name, opts, this.now);
    this.caches.push(c as Cache<unknown>);
    return c;
  }

  invalidate(tags: readonly string[]): void {
    for (const c of this.caches) for (const t of tags) c.invalidate(t);
  }

  clear(): void {
    for (const c of this.caches) c.clear();
  }

  stats(): CacheStats[] {
    return this.caches.map((c) => c.stats());
  }
}
