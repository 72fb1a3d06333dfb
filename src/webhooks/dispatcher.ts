import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from 'pino';
import { SYSTEM_ACTOR, type AuditLog } from '../audit/service.js';
import { eventBody, eventTypeFor, GLOBAL_EVENT_TYPES } from '../audit/events.js';
import { scanApiKeyExpiry } from '../apikeys/expiry-scan.js';
import { signatureHeaders } from './signing.js';
import { sendWebhook, type SendResult } from './send.js';
import { checkOutboundUrl, UnsafeUrlError, type Resolver } from '../outbound/url-policy.js';
import { returning } from '../storage/returning.js';
import { webhookIdFor, type WebhooksService } from './service.js';
import { recordWebhookDelivery } from '../metrics/registry.js';

export interface DispatcherOptions {
  retrySchedule: number[];
  allowPrivateNetworks: boolean;
  pollIntervalMs: number;
  timeoutMs: number;
  maxResponseBytes: number;
  /** An endpoint failing without a success for this long is disabled. */
  disableAfterMs: number;
  /** How long a claimed delivery stays invisible to other instances; above the timeout. */
  leaseMs: number;
  batchSize: number;
  expiryScanIntervalMs: number;
  resolve?: Resolver;
}

interface ClaimedDelivery {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  body: string;
  attempt_count: number;
  lease_id: string;
  org_id: string;
  url: string;
  secret_enc: string;
  previous_secret_enc: string | null;
  previous_secret_expires_at: Date | null;
}

/**
 * Moves events from the outbox to webhook endpoints. Any number of instances may run it:
 * - fan-out: outbox rows are claimed with FOR UPDATE SKIP LOCKED; one transaction inserts one
 *   delivery per (endpoint, event) (UNIQUE, ON CONFLICT DO NOTHING) and deletes the outbox rows;
 * - delivery: due deliveries are claimed with FOR UPDATE SKIP LOCKED and leased (next_attempt_at
 *   moved past the request timeout, lease_id set), so no other instance takes them while the
 *   request runs; the outcome is written only under the same lease_id. An instance that dies
 *   mid-request leaves the lease to expire and the delivery is retried with the same webhook-id
 *   (receivers deduplicate by it, as Standard Webhooks asks).
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private lastExpiryScan = 0;
  private readonly o: DispatcherOptions;

  constructor(
    private readonly ds: DataSource,
    private readonly audit: AuditLog,
    private readonly webhooks: WebhooksService,
    private readonly logger: Logger,
    opts: DispatcherOptions,
  ) {
    this.o = opts;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(this.o.pollIntervalMs);
  }

  /** Stops polling and waits for the in-flight round (deliveries finish or time out). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((err) => this.logger.error({ err }, 'webhook dispatcher round failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.o.pollIntervalMs);
        });
    }, ms);
    this.timer.unref();
  }

  /** One round: expiry scan (now and then), fan-out, then deliveries due. Public for tests and the CLI. */
  async tick(): Promise<void> {
    if (Date.now() - this.lastExpiryScan >= this.o.expiryScanIntervalMs) {
      this.lastExpiryScan = Date.now();
      await scanApiKeyExpiry(this.ds, this.audit).catch((err) => this.logger.error({ err }, 'api key expiry scan failed'));
    }
    while ((await this.fanOut()) === this.o.batchSize);
    await this.deliverDue();
  }

  /** Returns how many outbox rows were fanned out. */
  async fanOut(): Promise<number> {
    return this.ds.transaction(async (m) => {
      const claimed: Array<{ id: string; event_id: string }> = await m.query(
        `SELECT id, event_id FROM event_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.o.batchSize],
      );
      if (claimed.length === 0) return 0;
      const events = await m.query(
        `SELECT id, org_id AS "orgId", actor_type AS "actorType", actor_id AS "actorId", action, target_type AS "targetType",
                target_id AS "targetId", ip, details, created_at AS "createdAt"
           FROM audit_events WHERE id = ANY($1)`,
        [claimed.map((c) => c.event_id)],
      );
      for (const e of events) await this.fanOutOne(m, e);
      await m.query(`DELETE FROM event_outbox WHERE id = ANY($1)`, [claimed.map((c) => c.id)]);
      return claimed.length;
    });
  }

  private async fanOutOne(m: EntityManager, e: any): Promise<void> {
    const type = eventTypeFor(e.action);
    if (!type) return;
    let endpoints: Array<{ id: string; events: string[] | null }>;
    // Only endpoints that existed when the event happened: fan-out may run a little later.
    if (e.orgId) endpoints = await m.query(`SELECT id, events FROM webhook_endpoints WHERE org_id = $1 AND enabled
         AND created_at <= (SELECT created_at FROM audit_events WHERE id = $2)`, [e.orgId, e.id]);
    else if (GLOBAL_EVENT_TYPES.has(type)) endpoints = await m.query(`SELECT id, events FROM webhook_endpoints WHERE enabled AND created_at <= (SELECT created_at FROM audit_events WHERE id = $1)`, [e.id]);
    else return;
    const body = JSON.stringify(eventBody(type, e));
    for (const ep of endpoints) {
      if (ep.events && !ep.events.includes(type)) continue;
      await m.query(
        `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, status) VALUES ($1, $2, $3, $4, $5, 'pending')
         ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
        [randomUUID(), ep.id, e.id, type, body],
      );
    }
  }

  /** Claims and attempts the deliveries due now; returns how many were attempted. */
  async deliverDue(): Promise<number> {
    const lease = randomUUID();
    const claimed: ClaimedDelivery[] = returning(await this.ds.query(
      `WITH due AS (
         SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
          WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled
          ORDER BY d.next_attempt_at LIMIT $2
          FOR UPDATE OF d SKIP LOCKED)
       UPDATE webhook_deliveries d SET lease_id = $1, next_attempt_at = now() + ($3 || ' milliseconds')::interval
         FROM due, webhook_endpoints e
        WHERE d.id = due.id AND e.id = d.endpoint_id
       RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.attempt_count, d.lease_id,
                 e.org_id, e.url, e.secret_enc, e.previous_secret_enc, e.previous_secret_expires_at`,
      [lease, this.o.batchSize, String(this.o.leaseMs)],
    ));
    await Promise.all(claimed.map((d) => this.attempt(d)));
    return claimed.length;
  }

  private async attempt(d: ClaimedDelivery): Promise<void> {
    let result: SendResult;
    try {
      // Checked again at delivery: DNS may have changed since registration. The socket then goes to
      // the address checked here (url-policy.ts pinnedLookup).
      const target = await checkOutboundUrl(d.url, { allowPrivateNetworks: this.o.allowPrivateNetworks, resolve: this.o.resolve });
      const timestamp = Math.floor(Date.now() / 1000);
      const headers = signatureHeaders(this.webhooks.signingSecrets(d), webhookIdFor(d.event_id), timestamp, d.body);
      result = await sendWebhook(target, headers, d.body, { timeoutMs: this.o.timeoutMs, maxResponseBytes: this.o.maxResponseBytes });
    } catch (err) {
      const message = err instanceof UnsafeUrlError ? `refused: ${err.message}` : `internal: ${(err as Error).message}`;
      result = { ok: false, status: null, latencyMs: 0, error: message, responseBody: null };
    }
    recordWebhookDelivery(result);
    await this.complete(d, result).catch((err) => this.logger.error({ err, deliveryId: d.id }, 'recording a webhook attempt failed'));
  }

  private async complete(d: ClaimedDelivery, r: SendResult): Promise<void> {
    await this.ds.transaction(async (m) => {
      // Only the holder of the lease writes the outcome.
      const rows = await m.query(`SELECT attempt_count FROM webhook_deliveries WHERE id = $1 AND lease_id = $2 FOR UPDATE`, [d.id, d.lease_id]);
      if (!rows[0]) return;
      await m.query(
        `INSERT INTO webhook_attempts (id, delivery_id, status_code, latency_ms, error, response_body) VALUES ($1, $2, $3, $4, $5, $6)`,
        [randomUUID(), d.id, r.status, r.latencyMs, r.error?.slice(0, 500) ?? null, r.responseBody?.slice(0, this.o.maxResponseBytes) ?? null],
      );
      const attempts = rows[0].attempt_count + 1;
      if (r.ok) {
        await m.query(
          `UPDATE webhook_deliveries SET status = 'delivered', attempt_count = $2, delivered_at = now(), lease_id = NULL,
             last_status_code = $3, last_error = NULL WHERE id = $1`,
          [d.id, attempts, r.status],
        );
        await m.query(`UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, [d.endpoint_id]);
        return;
      }
      const delay = this.retryDelayMs(attempts);
      await m.query(
        `UPDATE webhook_deliveries SET attempt_count = $2, lease_id = NULL, last_status_code = $3, last_error = $4,
           status = CASE WHEN $5::bigint IS NULL THEN 'failed' ELSE 'pending' END,
           next_attempt_at = CASE WHEN $5::bigint IS NULL THEN next_attempt_at ELSE now() + ($5::bigint || ' milliseconds')::interval END
         WHERE id = $1`,
        [d.id, attempts, r.status, r.error?.slice(0, 500) ?? null, delay],
      );
      await this.noteEndpointFailure(m, d);
    });
  }

  /** Delay before the next attempt after `attempts` failures, or null when none is left. Jitter: +0-10 %. */
  retryDelayMs(attempts: number): number | null {
    const base = this.o.retrySchedule[attempts - 1];
    if (base === undefined) return null;
    return Math.round(base * 1000 * (1 + Math.random() * 0.1));
  }

  private async noteEndpointFailure(m: EntityManager, d: ClaimedDelivery): Promise<void> {
    const rows = returning<{ failing_since: Date | null; enabled: boolean }>(
      await m.query(`UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = $1 RETURNING failing_since, enabled`, [d.endpoint_id]),
    );
    const since = rows[0]?.failing_since ? new Date(rows[0].failing_since) : null;
    if (!since || !rows[0].enabled || Date.now() - since.getTime() < this.o.disableAfterMs) return;
    const reason = `failing since ${since.toISOString()}`;
    await m.query(`UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1`, [d.endpoint_id, reason]);
    await this.audit.record(
      SYSTEM_ACTOR,
      { orgId: d.org_id, action: 'webhook_endpoint.disabled', targetType: 'webhook_endpoint', targetId: d.endpoint_id, details: { url: d.url, reason, failing_since: since.toISOString() } },
      m,
    );
    this.logger.warn({ endpointId: d.endpoint_id }, 'webhook endpoint disabled after failing for too long');
  }
}
