import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { KeyValueStore } from './kv.js';
import { RedisSubscriber } from './redis-subscriber.js';
import { createCommandClient, describeTopology, type CommandClient, type HostPort, type RedisTopology } from './redis-topology.js';
import { instrumentRedis } from '../metrics/stores.js';

/**
 * The key scheme (every key and channel below carries the configured prefix, REDIS_PREFIX, so
 * deployments and test files sharing one Redis never see each other's data):
 *
 * | key                                  | holds                                         | written by          |
 * |--------------------------------------|-----------------------------------------------|---------------------|
 * | oidc:<Model>:<id>                    | a short-lived oidc-provider artifact (tokens, | oauth/adapter.ts    |
 * |                                      | codes, interactions, ReplayDetection jtis)    |                     |
 * | oidc:<Model>:uid:<uid>, …:userCode:… | index to the artifact's id                    | oauth/adapter.ts    |
 * | oidc:grant:<grantId>                 | set of the grant's artifact keys              | oauth/adapter.ts    |
 * | revoked:jti:<jti>, revoked:grant:<t> | deny-list entries for JWTs                    | oauth/deny-list.ts  |
 * | rl:<policy>:<subject>                | one sliding-window log (sorted set)           | ratelimit           |
 * | rl:authblock:<ip>                    | a refused-credentials block                   | ratelimit           |
 * | dash:session:<sha256>                | a dashboard session                           | dashboard/sessions  |
 * | channel: invalidate (tags of what changed; every in-process cache listens)                           |
 *
 * Redis Cluster places a key by the CRC16 of its name, or of the part inside the first `{…}` (a
 * hash tag). No key above carries a tag: no operation needs two keys changed atomically — every
 * MULTI (sAdd, incrBy) and every Lua script (the rate limiter's) touches exactly one key — so keys
 * spread evenly over the masters. Reads and deletes of several keys (mGet, del) are split per key
 * by this store on Cluster. Should an operation ever need several keys atomically, give them one tag
 * named for the narrowest owner: `{g:<grantId>}` for one grant's artifacts, `{k:<keyId>}` for one
 * credential, `{o:<orgId>}` for one tenant — never the whole prefix (REDIS_PREFIX may not contain
 * braces on Cluster: every key would land on one node).
 */
export class RedisKeyValueStore implements KeyValueStore {
  readonly kind = 'redis' as const;
  /** Raw client for callers with their own scripts (the rate limiter); Cluster-aware on Cluster. */
  readonly client: CommandClient;
  readonly topology: RedisTopology;
  private readonly subscriber: RedisSubscriber;
  private readonly cluster: boolean;
  private closing = false;

  constructor(
    topology: RedisTopology | string,
    readonly prefix: string,
    private readonly logger?: Logger,
  ) {
    this.topology = typeof topology === 'string' ? { mode: 'standalone', url: topology } : topology;
    // A command waits through at most this many reconnection attempts (a Sentinel or Cluster
    // failover), then fails; the caller's request fails instead of hanging.
    this.client = createCommandClient(this.topology, prefix, { maxRetriesPerRequest: this.topology.mode === 'standalone' ? 2 : 6 });
    this.cluster = this.client instanceof Cluster;
    instrumentRedis(this.client);
    this.watchConnection();
    this.subscriber = new RedisSubscriber(this.topology, () => this.clusterNodes(), logger);
  }

  /** Connection loss and recovery, logged once per change; errors surface through ping() (readyz). */
  private watchConnection(): void {
    let lost = false;
    this.client.on('error', () => {});
    this.client.on('ready', () => {
      if (lost) this.logger?.info(describeTopology(this.topology), 'Redis connection ready again');
      lost = false;
    });
    this.client.on('close', () => {
      if (lost || this.closing) return;
      lost = true;
      this.logger?.warn(describeTopology(this.topology), 'Redis connection lost; reconnecting');
    });
    // ioredis gives a client up for good when a connection attempt fails in certain ways (a
    // Sentinel connector torn down mid-attempt); a server must never stay without Redis for that.
    this.client.on('end', () => {
      if (this.closing) return;
      setTimeout(() => {
        if (!this.closing && this.client.status === 'end') this.client.connect().catch(() => {});
      }, 500).unref();
    });
  }

  private clusterNodes(): HostPort[] {
    if (!(this.client instanceof Cluster)) return [];
    return this.client.nodes('all').map((n) => ({ host: n.options.host!, port: n.options.port! }));
  }

  async get(key: string) {
    return safe(this.client.get(key));
  }
  async mGet(keys: string[]) {
    if (!keys.length) return [];
    // Cluster: MGET over keys in different slots is refused (CROSSSLOT); one GET per key, sent
    // together, costs one round trip per node involved.
    if (this.cluster) return safe(Promise.all(keys.map((k) => this.client.get(k))));
    return safe(this.client.mget(...keys));
  }
  async set(key: string, value: string, ttlSeconds?: number) {
    if (ttlSeconds === undefined) await safe(this.client.set(key, value));
    else await safe(this.client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds))));
  }
  async setNX(key: string, value: string, ttlSeconds: number) {
    const r = await safe(this.client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX'));
    return r === 'OK';
  }
  async getDel(key: string) {
    return safe(this.client.getdel(key));
  }
  async del(...keys: string[]) {
    if (!keys.length) return;
    if (this.cluster && keys.length > 1) await safe(Promise.all(keys.map((k) => this.client.del(k))));
    else await safe(this.client.del(...keys));
  }
  async sAdd(key: string, member: string, ttlSeconds: number) {
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    // GT: only ever lengthen the set's life (Redis 7). One key: one slot, so MULTI works on Cluster.
    await safe(this.client.multi().sadd(key, member).expire(key, ttl, 'GT').expire(key, ttl, 'NX').exec());
  }
  async sMembers(key: string) {
    return safe(this.client.smembers(key));
  }
  async incrBy(key: string, by: number, ttlSeconds?: number) {
    if (ttlSeconds === undefined) return safe(this.client.incrby(key, by));
    const res = await safe(this.client.multi().incrby(key, by).expire(key, Math.max(1, Math.ceil(ttlSeconds)), 'NX').exec());
    return Number(res?.[0]?.[1]);
  }
  async publish(channel: string, message: string) {
    // Channels are not keys: ioredis does not prefix them. On Cluster, PUBLISH reaches every node.
    await safe(this.client.publish(this.prefix + channel, message));
  }
  async subscribe(channel: string, onMessage: (message: string) => void) {
    await this.subscriber.subscribe(this.prefix + channel, onMessage);
  }
  onSubscriptionReset(listener: () => void) {
    return this.subscriber.onReset(listener);
  }
  async ping() {
    let timer: NodeJS.Timeout | undefined;
    try {
      return (
        (await Promise.race([
          this.client.ping(),
          new Promise<string>((_, rej) => {
            timer = setTimeout(() => rej(new Error('timeout')), 1000);
          }),
        ])) === 'PONG'
      );
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
  async close() {
    this.closing = true;
    this.client.disconnect();
    this.subscriber.close();
  }
}

/**
 * ioredis attaches the failed command's arguments to its errors (`err.command.args`): values,
 * tokens, passwords. Callers log errors, so only the message and the command's name go on.
 */
export class RedisCommandError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'RedisCommandError';
  }
}

async function safe<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const e = err as { message?: string; command?: { name?: string } };
    throw new RedisCommandError(String(e?.message ?? err), e?.command?.name);
  }
}
