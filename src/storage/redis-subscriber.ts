import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createSubscriberConnection, type HostPort, type RedisTopology } from './redis-topology.js';

/**
 * The one SUBSCRIBE connection of a process, and the news that it may have missed messages.
 *
 * Pub/sub is fire-and-forget: a message published while the subscriber is disconnected is lost for
 * it. So every time the subscriptions are confirmed by Redis again after a loss (reconnect, Sentinel
 * failover, Cluster node change), or for the first time after a `subscribe()` had to return before
 * Redis confirmed it (Redis unreachable at start), the reset listeners run: a cache that drops its
 * entries then cannot serve anything revoked during the gap. They run after the SUBSCRIBE reply, so
 * whatever is published from then on arrives.
 *
 * Cluster: classic pub/sub is broadcast over the cluster bus to every node, so one connection to any
 * node hears every PUBLISH. When that connection ends, another node is chosen (the node may be gone).
 */
export class RedisSubscriber {
  private conn: Redis | undefined;
  private readonly handlers = new Map<string, ((message: string) => void)[]>();
  private readonly resetListeners = new Set<() => void>();
  /** subscribe() calls waiting for Redis' first confirmation. */
  private readonly confirmWaiters = new Set<() => void>();
  /** Redis confirmed the subscriptions at least once. */
  private everConfirmed = false;
  /** A subscribe() returned without Redis' confirmation: messages may have been missed since. */
  private gap = false;
  private closed = false;
  private failures = 0;
  private lost = false;
  /** Cluster node choice: rotates through the known nodes. */
  private nodeTurn = Math.floor(Math.random() * 1000);

  constructor(
    private readonly topology: RedisTopology,
    /** Cluster only: the nodes currently known (falls back to the configured seed nodes). */
    private readonly knownNodes: () => HostPort[] = () => [],
    private readonly logger?: Logger,
  ) {}

  /** Resolves once Redis confirmed the subscription, or early (without blocking startup) if it is unreachable. */
  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    const list = this.handlers.get(channel) ?? [];
    list.push(onMessage);
    this.handlers.set(channel, list);
    if (list.length > 1) return;
    const conn = this.conn ?? this.connect();
    if (conn.status === 'ready') {
      try {
        await conn.subscribe(channel);
      } catch (err) {
        this.logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'invalidation subscriber could not subscribe');
        this.gap = true;
      }
      return;
    }
    // Not connected yet: the `ready` handler subscribes every channel. Wait for it, or for the first
    // sign that Redis is not there (readyz reports it), whichever comes first.
    const confirmed = await new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        this.confirmWaiters.delete(onConfirm);
        conn.off('error', onError);
        conn.off('end', onError);
        resolve(ok);
      };
      const onConfirm = () => done(true);
      const onError = () => done(false);
      this.confirmWaiters.add(onConfirm);
      conn.once('error', onError);
      conn.once('end', onError);
    });
    if (!confirmed) this.gap = true;
  }

  /** Listener runs each time the subscriptions were re-established after messages may have been lost. */
  onReset(listener: () => void): () => void {
    this.resetListeners.add(listener);
    return () => this.resetListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.conn?.disconnect();
    this.conn = undefined;
  }

  private connect(): Redis {
    const cluster = this.topology.mode === 'cluster';
    let node: HostPort | undefined;
    if (this.topology.mode === 'cluster') {
      const known = this.knownNodes();
      const nodes = known.length ? known : this.topology.nodes;
      node = nodes[this.nodeTurn++ % nodes.length];
    }
    // Standalone and Sentinel reconnect in place (Sentinel asks for the current master each time);
    // a Cluster subscriber ends instead and picks a node that is still there. Any connection that
    // ends is replaced.
    const conn = createSubscriberConnection(this.topology, { node, retry: !cluster });
    this.conn = conn;
    conn.on('error', () => {}); // reported through the state changes below, not as unhandled events
    conn.on('message', (channel: string, message: string) => {
      for (const h of this.handlers.get(channel) ?? []) {
        try {
          h(message);
        } catch (err) {
          this.logger?.error({ err: err instanceof Error ? err.message : String(err), channel }, 'invalidation handler failed');
        }
      }
    });
    conn.on('ready', () => void this.resubscribe(conn));
    conn.on('close', () => {
      if (this.closed || this.conn !== conn || this.lost) return;
      this.lost = true;
      if (this.everConfirmed) this.logger?.warn('invalidation subscriber lost its Redis connection; caches are flushed when it is back');
    });
    conn.once('end', () => {
      if (this.closed || this.conn !== conn) return;
      this.lost = this.lost || this.everConfirmed;
      const delay = Math.min(50 * 2 ** this.failures++, 2000);
      setTimeout(() => {
        if (!this.closed && this.conn === conn) this.connect();
      }, delay).unref();
    });
    return conn;
  }

  private async resubscribe(conn: Redis): Promise<void> {
    const channels = [...this.handlers.keys()];
    if (!channels.length || this.conn !== conn) return;
    try {
      await conn.subscribe(...channels);
    } catch (err) {
      // Refused (an ACL without the channel) or lost again: the next `ready` tries again.
      this.logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'invalidation subscriber could not subscribe');
      this.gap = true;
      if (this.conn === conn && !this.closed) setTimeout(() => conn.status === 'ready' && void this.resubscribe(conn), 1000).unref();
      return;
    }
    if (this.conn !== conn || this.closed) return;
    this.failures = 0;
    const missed = this.everConfirmed || this.gap;
    const wasLost = this.lost;
    this.everConfirmed = true;
    this.gap = false;
    this.lost = false;
    for (const w of [...this.confirmWaiters]) w();
    if (!missed) return;
    if (wasLost) this.logger?.info({ channels: channels.length }, 'invalidation subscriber is back; flushing caches that may have missed messages');
    for (const l of [...this.resetListeners]) {
      try {
        l();
      } catch (err) {
        this.logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'subscription reset listener failed');
      }
    }
  }
}
