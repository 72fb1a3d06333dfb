import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { redisMode, type Config } from '../config/schema.js';

export interface HostPort {
  host: string;
  port: number;
}

/** Credentials for one kind of Redis endpoint (data node or sentinel); ACL user optional. */
export interface RedisAuth {
  username?: string;
  password?: string;
}

/** TLS to an endpoint: absent means plain TCP; `ca` absent means the system's authorities. */
export interface RedisTls {
  ca?: string;
}

/** Which Redis to reach and how; built from the configuration by `redisTopology`. */
export type RedisTopology =
  | { mode: 'standalone'; url: string; auth?: RedisAuth; tls?: RedisTls }
  | { mode: 'sentinel'; sentinels: HostPort[]; name: string; auth?: RedisAuth; tls?: RedisTls; sentinelAuth?: RedisAuth; sentinelTls?: RedisTls }
  | { mode: 'cluster'; nodes: HostPort[]; auth?: RedisAuth; tls?: RedisTls };

export type CommandClient = Redis | Cluster;

export function parseHostPort(s: string): HostPort {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(i + 1)) };
}

/** The configured Redis, or null for the in-process store. Reads the CA file named by the configuration. */
export function redisTopology(c: Config): RedisTopology | null {
  const mode = redisMode(c);
  if (!mode) return null;
  const r = c.redis;
  const ca = r.tlsCaFile ? readFileSync(r.tlsCaFile, 'utf8') : undefined;
  const auth = r.username || r.password ? { username: r.username, password: r.password } : undefined;
  const tls = r.tls ? { ca } : undefined;
  if (mode === 'cluster') return { mode, nodes: r.clusterNodes!.map(parseHostPort), auth, tls };
  if (mode === 'sentinel') {
    return {
      mode,
      sentinels: r.sentinels!.map(parseHostPort),
      name: r.sentinelName!,
      auth,
      tls,
      sentinelAuth: r.sentinelUsername || r.sentinelPassword ? { username: r.sentinelUsername, password: r.sentinelPassword } : undefined,
      sentinelTls: r.sentinelTls ? { ca } : undefined,
    };
  }
  const secure = c.redisUrl!.startsWith('rediss:');
  return { mode, url: c.redisUrl!, auth, tls: secure ? { ca } : undefined };
}

function tlsOptions(t: RedisTls | undefined): ConnectionOptions | undefined {
  return t ? { ...(t.ca && { ca: t.ca }) } : undefined;
}

/** Connection settings shared by every data-node connection (commands and the subscriber). */
function dataNodeOptions(t: RedisTopology): RedisOptions {
  return {
    ...(t.auth?.username && { username: t.auth.username }),
    ...(t.auth?.password && { password: t.auth.password }),
    ...(t.tls && { tls: tlsOptions(t.tls) }),
  };
}

function sentinelOptions(t: Extract<RedisTopology, { mode: 'sentinel' }>): RedisOptions {
  return {
    sentinels: t.sentinels,
    name: t.name,
    ...(t.sentinelAuth?.username && { sentinelUsername: t.sentinelAuth.username }),
    ...(t.sentinelAuth?.password && { sentinelPassword: t.sentinelAuth.password }),
    ...(t.sentinelTls && { sentinelTLS: tlsOptions(t.sentinelTls) }),
    // TLS to the master the sentinels name (ioredis applies `tls` there only with this flag).
    ...(t.tls && { enableTLSForSentinelMode: true }),
    // Not ioredis' failoverDetector: its disconnect on +switch-master, landing while a reconnection
    // is under way, ends the client for good ("Connection is closed." on every later command; seen
    // here under load). Reconnection attempts every 50-300 ms find the new master as soon as the
    // sentinels name it.
    sentinelRetryStrategy: (times: number) => Math.min(times * 100, 1000),
  };
}

/** Quick first attempts (a failover completes in about a second or two), then every 2 s. */
function reconnectDelay(times: number): number {
  return Math.min(50 * times, 2000);
}

/**
 * The client for commands. Standalone and Sentinel: one connection (Sentinel resolves the master on
 * every reconnect). Cluster: ioredis' Cluster client, which routes each command to the node owning
 * its slot and follows MOVED/ASK. `maxRetriesPerRequest` bounds how long a command waits in the
 * offline queue while the connection is re-established (a failover); callers see an error after.
 */
export function createCommandClient(t: RedisTopology, keyPrefix: string, opts: { maxRetriesPerRequest: number }): CommandClient {
  // Auto-pipelining: every command issued in one turn of the event loop goes out in one write (per
  // Cluster node), so a request's checks and the concurrent requests' commands share round trips and
  // syscalls. On Cluster, ioredis groups them by the slot's node, prefix included.
  const common: RedisOptions = { keyPrefix, maxRetriesPerRequest: opts.maxRetriesPerRequest, enableOfflineQueue: true, retryStrategy: reconnectDelay, enableAutoPipelining: true };
  if (t.mode === 'cluster') {
    return new Cluster(t.nodes, {
      keyPrefix,
      enableAutoPipelining: true,
      enableOfflineQueue: true,
      // Replicas may lag: every read goes to the slot's master so a revocation is seen at once.
      scaleReads: 'master',
      redisOptions: { ...dataNodeOptions(t), maxRetriesPerRequest: opts.maxRetriesPerRequest },
      slotsRefreshTimeout: 2000,
      // A new master after a failover: refresh the slot map quickly and retry the command.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      // TLS: keep seed host names as given, so certificates are checked against the names they
      // carry (ioredis would otherwise connect to, and verify, the resolved IP addresses).
      ...(t.tls && { dnsLookup: (address: string, done: (err: null, address: string) => void) => done(null, address) }),
    });
  }
  if (t.mode === 'sentinel') return new Redis({ ...common, ...dataNodeOptions(t), ...sentinelOptions(t) });
  return new Redis(t.url, { ...common, ...dataNodeOptions(t) });
}

/**
 * One connection for SUBSCRIBE. `node` picks the Cluster node (classic pub/sub is broadcast to every
 * node of a cluster, so any node hears every PUBLISH). Reconnection is the caller's: `retry` false
 * makes the connection end on the first loss, so the caller can choose another node.
 */
export function createSubscriberConnection(t: RedisTopology, opts: { node?: HostPort; retry: boolean }): Redis {
  const base: RedisOptions = {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    // Resubscription is done by the subscriber itself, so it knows when it has been confirmed.
    autoResubscribe: false,
    retryStrategy: opts.retry ? reconnectDelay : () => null,
  };
  if (t.mode === 'cluster') {
    const node = opts.node ?? t.nodes[0];
    return new Redis({ ...base, ...dataNodeOptions(t), host: node.host, port: node.port });
  }
  if (t.mode === 'sentinel') return new Redis({ ...base, ...dataNodeOptions(t), ...sentinelOptions(t) });
  return new Redis(t.url, { ...base, ...dataNodeOptions(t) });
}

/** A printable description without credentials, for logs. */
export function describeTopology(t: RedisTopology): Record<string, unknown> {
  const tls = Boolean(t.tls);
  if (t.mode === 'cluster') return { mode: t.mode, nodes: t.nodes.map((n) => `${n.host}:${n.port}`), tls };
  if (t.mode === 'sentinel') return { mode: t.mode, sentinels: t.sentinels.map((n) => `${n.host}:${n.port}`), name: t.name, tls };
  const u = new URL(t.url);
  return { mode: t.mode, host: u.host, tls };
}
