import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { Actor, AuditLog } from '../audit/service.js';
import { EVENT_TYPES, TEST_EVENT_TYPE, type EventBody } from '../audit/events.js';
import { generateSecret } from './signing.js';
import type { SecretBox } from './secret-box.js';
import { checkOutboundUrl, UnsafeUrlError, type Resolver } from '../outbound/url-policy.js';

/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

export class WebhookInputError extends Error {
  constructor(
    readonly code: 'INVALID_WEBHOOK_URL' | 'INVALID_EVENT_TYPE',
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export class WebhookNotFoundError extends Error {}

export interface EndpointView {
  id: string;
  org_id: string;
  url: string;
  description: string | null;
  /** null: every event type. */
  events: string[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  failing_since: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface AttemptView {
  attempted_at: string;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
}

export interface DeliveryView {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempt_count: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  attempts: AttemptView[];
}

export interface EndpointInput {
  url: string;
  events?: string[] | null;
  description?: string | null;
}

interface EndpointRow {
  id: string;
  org_id: string;
  url: string;
  description: string | null;
  events: string[] | null;
  secret_enc: string;
  previous_secret_enc: string | null;
  previous_secret_expires_at: Date | null;
  enabled: boolean;
  disabled_reason: string | null;
  failing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

/** Standard Webhooks message id: the same for every attempt (and every endpoint) of one event. */
export const webhookIdFor = (eventId: string) => `msg_${eventId}`;

/**
 * Webhook endpoints of an organization: create, list, update, delete, rotate the secret, send a
 * test event, list deliveries and their attempts, retry a delivery. Every change is audited.
 */
export class WebhooksService {
  constructor(
    private readonly ds: DataSource,
    private readonly audit: AuditLog,
    private readonly box: SecretBox,
    private readonly opts: { allowPrivateNetworks: boolean; retrySchedule: number[]; resolve?: Resolver },
  ) {}

  /** Refused at registration for the same reasons as at delivery (src/outbound/url-policy.ts). */
  async checkUrl(url: string): Promise<void> {
    try {
      await checkOutboundUrl(url, { allowPrivateNetworks: this.opts.allowPrivateNetworks, resolve: this.opts.resolve });
    } catch (err) {
      if (err instanceof UnsafeUrlError) throw new WebhookInputError('INVALID_WEBHOOK_URL', err.message, { reason: err.reason });
      throw err;
    }
  }

  private checkEvents(events: string[] | null | undefined): string[] | null {
    if (events === undefined || events === null || events.length === 0) return null;
    const unknown = events.filter((e) => !(EVENT_TYPES as readonly string[]).includes(e));
    if (unknown.length) {
      throw new WebhookInputError('INVALID_EVENT_TYPE', `Unknown event type: ${unknown.join(', ')}`, { unknown, known: EVENT_TYPES });
    }
    return [...new Set(events)].sort();
  }

  async create(actor: Actor, orgId: string, input: EndpointInput): Promise<{ endpoint: EndpointView; secret: string }> {
    await this.checkUrl(input.url);
    const events = this.checkEvents(input.events);
    const secret = generateSecret();
    const id = randomUUID();
    await this.ds.transaction(async (m) => {
      await m.query(
        `INSERT INTO webhook_endpoints (id, org_id, url, description, events, secret_enc, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [id, orgId, input.url, input.description ?? null, events === null ? null : JSON.stringify(events), this.box.seal(secret), actor.id],
      );
      await this.audit.record(actor, { orgId, action: 'webhook_endpoint.created', targetType: 'webhook_endpoint', targetId: id, details: { url: input.url, events } }, m);
    });
    return { endpoint: await this.get(orgId, id), secret };
  }

  async list(orgId: string): Promise<EndpointView[]> {
    const rows: EndpointRow[] = await this.ds.query(`SELECT * FROM webhook_endpoints WHERE org_id = $1 ORDER BY created_at, id`, [orgId]);
    return rows.map(view);
  }

  /** Tenant boundary: an endpoint is found only through its own organization. */
  async get(orgId: string, id: string, m: EntityManager = this.ds.manager): Promise<EndpointView> {
    return view(await this.row(orgId, id, m));
  }

  private async row(orgId: string, id: string, m: EntityManager, lock = false): Promise<EndpointRow> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new WebhookNotFoundError('Webhook endpoint not found');
    const rows: EndpointRow[] = await m.query(`SELECT * FROM webhook_endpoints WHERE id = $1 AND org_id = $2${lock ? ' FOR UPDATE' : ''}`, [id, orgId]);
    if (!rows[0]) throw new WebhookNotFoundError('Webhook endpoint not found');
    return rows[0];
  }

  async update(actor: Actor, orgId: string, id: string, patch: Partial<EndpointInput> & { enabled?: boolean }): Promise<EndpointView> {
    if (patch.url !== undefined) await this.checkUrl(patch.url);
    const events = patch.events !== undefined ? this.checkEvents(patch.events) : undefined;
    await this.ds.transaction(async (m) => {
      const cur = await this.row(orgId, id, m, true);
      const enabling = patch.enabled === true && !cur.enabled;
      await m.query(
        `UPDATE webhook_endpoints SET url = $3, description = $4, events = $5, enabled = $6,
           disabled_reason = CASE WHEN $6 THEN NULL ELSE COALESCE(disabled_reason, 'disabled by a user') END,
           failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END, updated_at = now()
         WHERE id = $1 AND org_id = $2`,
        [
          id,
          orgId,
          patch.url ?? cur.url,
          patch.description !== undefined ? patch.description : cur.description,
          events !== undefined ? (events === null ? null : JSON.stringify(events)) : cur.events === null ? null : JSON.stringify(cur.events),
          patch.enabled ?? cur.enabled,
          enabling,
        ],
      );
      const changed = Object.keys(patch).filter((k) => (patch as Record<string, unknown>)[k] !== undefined);
      await this.audit.record(actor, { orgId, action: 'webhook_endpoint.updated', targetType: 'webhook_endpoint', targetId: id, details: { changed } }, m);
    });
    return this.get(orgId, id);
  }

  async remove(actor: Actor, orgId: string, id: string): Promise<void> {
    await this.ds.transaction(async (m) => {
      const cur = await this.row(orgId, id, m, true);
      await m.query(`DELETE FROM webhook_endpoints WHERE id = $1 AND org_id = $2`, [id, orgId]);
      await this.audit.record(actor, { orgId, action: 'webhook_endpoint.deleted', targetType: 'webhook_endpoint', targetId: id, details: { url: cur.url } }, m);
    });
  }

  /** A new secret, returned once; the previous one keeps signing for 24 hours. */
  async rotateSecret(actor: Actor, orgId: string, id: string): Promise<{ endpoint: EndpointView; secret: string }> {
    const secret = generateSecret();
    await this.ds.transaction(async (m) => {
      const cur = await this.row(orgId, id, m, true);
      await m.query(
        `UPDATE webhook_endpoints SET secret_enc = $3, previous_secret_enc = $4, previous_secret_expires_at = $5, updated_at = now() WHERE id = $1 AND org_id = $2`,
        [id, orgId, this.box.seal(secret), cur.secret_enc, new Date(Date.now() + ROTATION_OVERLAP_MS)],
      );
      await this.audit.record(actor, { orgId, action: 'webhook_endpoint.secret_rotated', targetType: 'webhook_endpoint', targetId: id }, m);
    });
    return { endpoint: await this.get(orgId, id), secret };
  }

  /** Secrets that sign right now: the current one first, then the previous one within its overlap. */
  signingSecrets(row: Pick<EndpointRow, 'secret_enc' | 'previous_secret_enc' | 'previous_secret_expires_at'>, now = new Date()): string[] {
    const out = [this.box.open(row.secret_enc)];
    if (row.previous_secret_enc && row.previous_secret_expires_at && new Date(row.previous_secret_expires_at) > now) {
      out.push(this.box.open(row.previous_secret_enc));
    }
    return out;
  }

  /** Queues a `webhook.test` event for this endpoint alone (through the normal dispatcher). */
  async sendTest(actor: Actor, orgId: string, id: string): Promise<DeliveryView> {
    const deliveryId = randomUUID();
    await this.ds.transaction(async (m) => {
      await this.row(orgId, id, m);
      const eventId = await this.audit.record(actor, { orgId, action: 'webhook_endpoint.tested', targetType: 'webhook_endpoint', targetId: id }, m);
      const body: EventBody = {
        type: TEST_EVENT_TYPE,
        timestamp: new Date().toISOString(),
        data: { event_id: eventId, object: 'webhook_endpoint', id, organization_id: orgId, actor: { type: actor.type, id: actor.id }, ip: actor.ip ?? null },
      };
      await m.query(
        `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, status) VALUES ($1, $2, $3, $4, $5, 'pending')`,
        [deliveryId, id, eventId, TEST_EVENT_TYPE, JSON.stringify(body)],
      );
    });
    return this.delivery(orgId, id, deliveryId);
  }

  /** Newest first; `before` = the (created_at, id) of the last delivery of the previous page. */
  async listDeliveries(orgId: string, endpointId: string, opts: { limit?: number; status?: string; before?: { createdAt: string; id: string } } = {}): Promise<DeliveryView[]> {
    await this.row(orgId, endpointId, this.ds.manager);
    const limit = Math.max(1, Math.min(opts.limit ?? 50, 201));
    const rows = await this.ds.query(
      `SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
          AND ($4::timestamptz IS NULL OR (date_trunc('milliseconds', created_at), id) < ($4::timestamptz, $5::uuid))
        ORDER BY date_trunc('milliseconds', created_at) DESC, id DESC LIMIT $3`,
      [endpointId, opts.status ?? null, limit, opts.before?.createdAt ?? null, opts.before?.id ?? null],
    );
    return this.withAttempts(rows);
  }

  async delivery(orgId: string, endpointId: string, deliveryId: string): Promise<DeliveryView> {
    await this.row(orgId, endpointId, this.ds.manager);
    if (!/^[0-9a-f-]{36}$/i.test(deliveryId)) throw new WebhookNotFoundError('Delivery not found');
    const rows = await this.ds.query(`SELECT * FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2`, [deliveryId, endpointId]);
    if (!rows[0]) throw new WebhookNotFoundError('Delivery not found');
    return (await this.withAttempts(rows))[0];
  }

  /** Queues one more attempt now (same webhook-id); if it fails, the delivery is failed again. */
  async retryDelivery(actor: Actor, orgId: string, endpointId: string, deliveryId: string): Promise<DeliveryView> {
    await this.delivery(orgId, endpointId, deliveryId);
    await this.ds.transaction(async (m) => {
      await m.query(
        `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), lease_id = NULL,
           attempt_count = GREATEST(attempt_count, $3) WHERE id = $1 AND endpoint_id = $2 AND status <> 'pending'`,
        [deliveryId, endpointId, this.opts.retrySchedule.length],
      );
      await this.audit.record(actor, { orgId, action: 'webhook_delivery.retried', targetType: 'webhook_delivery', targetId: deliveryId, details: { endpoint_id: endpointId } }, m);
    });
    return this.delivery(orgId, endpointId, deliveryId);
  }

  private async withAttempts(rows: any[]): Promise<DeliveryView[]> {
    if (rows.length === 0) return [];
    const attempts = await this.ds.query(
      `SELECT delivery_id, attempted_at, status_code, latency_ms, error FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY attempted_at, id`,
      [rows.map((r) => r.id)],
    );
    return rows.map((r) => ({
      id: r.id,
      webhook_id: webhookIdFor(r.event_id),
      event_id: r.event_id,
      event_type: r.event_type,
      status: r.status,
      attempt_count: r.attempt_count,
      next_attempt_at: r.status === 'pending' ? iso(r.next_attempt_at) : null,
      last_status_code: r.last_status_code,
      last_error: r.last_error,
      created_at: iso(r.created_at)!,
      delivered_at: iso(r.delivered_at),
      attempts: attempts
        .filter((a: any) => a.delivery_id === r.id)
        .map((a: any) => ({ attempted_at: iso(a.attempted_at)!, status_code: a.status_code, latency_ms: a.latency_ms, error: a.error })),
    }));
  }
}

function view(r: EndpointRow): EndpointView {
  return {
    id: r.id,
    org_id: r.org_id,
    url: r.url,
    description: r.description,
    events: r.events,
    enabled: r.enabled,
    disabled_reason: r.disabled_reason,
    failing_since: iso(r.failing_since),
    previous_secret_expires_at: r.previous_secret_expires_at && new Date(r.previous_secret_expires_at) > new Date() ? iso(r.previous_secret_expires_at) : null,
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at)!,
  };
}
