import type { DataSource } from 'typeorm';
import type { KeyValueStore } from '../storage/kv.js';

/**
 * A check slower than this counts as down: a balancer's probe must get an answer, not a hang. Two
 * seconds rather than one: on a starved event loop an expired timer runs before the I/O callback that
 * already holds the store's answer, so a tight bound reports a busy instance as unavailable.
 */
export const CHECK_TIMEOUT_MS = 2000;

export type ReadyStatus = 'ready' | 'degraded' | 'unavailable' | 'draining';

export interface Readiness {
  httpStatus: 200 | 503;
  body: {
    status: ReadyStatus;
    checks: Record<string, 'up' | 'down'>;
    /** What this instance can answer right now (docs/operations.md, "Readiness"). */
    serves: { api_keys: boolean; oauth: boolean };
    details: Record<string, unknown>;
  };
}

function bounded(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    t.unref();
    p.then(
      () => (clearTimeout(t), resolve(true)),
      () => (clearTimeout(t), resolve(false)),
    );
  });
}

/**
 * What the instance can serve, for balancers and Kubernetes:
 * - `ready` (200): PostgreSQL and the key-value store answer;
 * - `degraded` (200): Redis does not answer; API keys (PostgreSQL, cached) and every answer that is
 *   already cached keep working, OAuth flows that need Redis fail fast. Every instance shares the same
 *   Redis, so taking them all out of the balancer would turn a partial outage into a full one;
 * - `unavailable` (503): PostgreSQL, the store of record, does not answer;
 * - `draining` (503): shutting down; send new requests elsewhere.
 * Each check is single-flight (a stalled store is probed by one query at a time, not one per probe)
 * and bounded by CHECK_TIMEOUT_MS.
 */
export class ReadinessProbe {
  private db: Promise<boolean> | undefined;
  private kvCheck: Promise<boolean> | undefined;

  constructor(
    private readonly ds: DataSource,
    private readonly kv: KeyValueStore,
    private readonly extraDetails: () => Record<string, unknown> = () => ({}),
  ) {}

  private checkDb(): Promise<boolean> {
    this.db ??= bounded(this.ds.query('SELECT 1'), CHECK_TIMEOUT_MS).finally(() => (this.db = undefined));
    return this.db;
  }

  private checkKv(): Promise<boolean> {
    this.kvCheck ??= bounded(this.kv.ping().then((ok) => (ok ? undefined : Promise.reject(new Error('down')))), CHECK_TIMEOUT_MS).finally(
      () => (this.kvCheck = undefined),
    );
    return this.kvCheck;
  }

  async check(draining: boolean): Promise<Readiness> {
    // Draining answers at once: the balancer needs that verdict, not the stores' state.
    if (draining) {
      return { httpStatus: 503, body: { status: 'draining', checks: {}, serves: { api_keys: false, oauth: false }, details: {} } };
    }
    const [db, kv] = await Promise.all([this.checkDb(), this.checkKv()]);
    const kvName = this.kv.kind === 'redis' ? 'redis' : 'memory_store';
    const status: ReadyStatus = draining ? 'draining' : !db ? 'unavailable' : !kv ? 'degraded' : 'ready';
    return {
      httpStatus: status === 'ready' || status === 'degraded' ? 200 : 503,
      body: {
        status,
        checks: { database: db ? 'up' : 'down', [kvName]: kv ? 'up' : 'down' },
        serves: { api_keys: db && !draining, oauth: db && kv && !draining },
        details: this.extraDetails(),
      },
    };
  }
}
