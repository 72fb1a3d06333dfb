import http from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';

/** A connection with no request in flight for this long is closed when the drain ends. */
const IDLE_CLOSE_AFTER_MS = 1000;
/**
 * The listener closes once no new connection has arrived for this long: closing it resets the
 * connections still waiting in the kernel's accept queue, which their clients believe established.
 * After the delay a balancer has stopped sending, so this is normally met at once.
 */
const QUIET_BEFORE_CLOSE_MS = 500;

interface Conn {
  active: number;
  lastActive: number;
}

/**
 * Shutdown without dropping requests, for HTTP/1.1 keep-alive clients.
 *
 * `server.close()` is not enough: since Node 19 it calls `closeIdleConnections()`, which also drops a
 * keep-alive connection whose next request is already in the socket buffer but not yet parsed, and a
 * client sees a reset for a request it had sent. So the drain never destroys a connection that could
 * hold an unanswered request:
 *  1. begin(): readiness turns unready, and every response from then on (and every response whose
 *     headers are not sent yet) carries `Connection: close` (RFC 9112 §9.6), so each client ends its
 *     connection after its current answer and opens the next one elsewhere;
 *  2. the caller keeps serving for the configured delay, so balancers see the unready state;
 *  3. finish(): once no new connection has come for a moment, stop listening (the net.Server close,
 *     without the HTTP server's idle sweep), let the
 *     in-flight requests end, and close connections only once they have been idle for a while (a
 *     client that has not sent anything for a second is not in the middle of sending); connections
 *     still open at the deadline are closed.
 */
export class Drain {
  draining = false;
  private readonly conns = new Map<Socket, Conn>();
  private readonly open = new Set<http.ServerResponse>();
  private lastConnectionAt = 0;

  constructor(private readonly server: http.Server) {
    server.on('connection', (socket: Socket) => {
      this.lastConnectionAt = Date.now();
      this.conns.set(socket, { active: 0, lastActive: Date.now() });
      socket.once('close', () => this.conns.delete(socket));
    });
  }

  /** Call first for every request. */
  track(req: http.IncomingMessage, res: http.ServerResponse): void {
    const c = this.conns.get(req.socket);
    if (c) c.active++;
    if (this.draining) res.setHeader('Connection', 'close');
    else this.open.add(res);
    res.once('close', () => {
      this.open.delete(res);
      if (c) {
        c.active--;
        c.lastActive = Date.now();
      }
    });
  }

  begin(): void {
    if (this.draining) return;
    this.draining = true;
    for (const res of this.open) if (!res.headersSent) res.setHeader('Connection', 'close');
    this.open.clear();
  }

  /** Stops accepting connections and resolves when every connection is closed (or at the deadline). */
  async finish(timeoutMs: number): Promise<void> {
    this.begin();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() - this.lastConnectionAt < QUIET_BEFORE_CLOSE_MS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.server.listening) net.Server.prototype.close.call(this.server);
    while (this.conns.size > 0 && Date.now() < deadline) {
      const now = Date.now();
      for (const [socket, c] of this.conns) {
        if (c.active === 0 && now - c.lastActive >= IDLE_CLOSE_AFTER_MS && socket.readableLength === 0) socket.destroy();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const socket of this.conns.keys()) socket.destroy();
  }
}
