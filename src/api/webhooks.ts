import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf } from '../auth/middleware.js';
import { actorOf } from '../auth/principal.js';
import { jsonBody } from '../http/body.js';
import { AppError, errors } from '../http/errors.js';
import { guard, type Access } from '../http/guard.js';
import { decodeCursor, encodeCursor, paginate, pageQueryShape } from '../http/pagination.js';
import { DeletedSchema, ok, okPage } from '../http/responses.js';
import { WebhookInputError, WebhookNotFoundError, type WebhooksService } from '../webhooks/service.js';

const createBody = z
  .strictObject({
    url: z.string().min(1).max(2048).meta({ description: 'https URL (public addresses only)' }),
    events: z.array(z.string().min(1).max(100)).max(50).optional().meta({ description: 'Event types; absent: every type' }),
    description: z.string().max(500).nullable().optional(),
  })
  .meta({ id: 'WebhookCreate' });
const patchBody = z
  .strictObject({
    url: z.string().min(1).max(2048).optional(),
    events: z.array(z.string().min(1).max(100)).max(50).nullable().optional(),
    description: z.string().max(500).nullable().optional(),
    enabled: z.boolean().optional(),
  })
  .meta({ id: 'WebhookUpdate' });
const deliveriesQuery = z.object({
  ...pageQueryShape,
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
});

export const WebhookSchema = z
  .object({
    id: z.string(),
    org_id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.string()).nullable().meta({ description: 'null: every event type' }),
    enabled: z.boolean(),
    disabled_reason: z.string().nullable(),
    failing_since: z.string().nullable(),
    previous_secret_expires_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'WebhookEndpoint' });
const WebhookWithSecret = WebhookSchema.extend({ secret: z.string().meta({ description: 'The signing secret: shown in this answer only' }) }).meta({ id: 'WebhookEndpointWithSecret' });
export const DeliverySchema = z
  .object({
    id: z.string(),
    webhook_id: z.string(),
    event_id: z.string(),
    event_type: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempt_count: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: z.string(),
    delivered_at: z.string().nullable(),
    attempts: z.array(z.object({ attempted_at: z.string(), status_code: z.number().int().nullable(), latency_ms: z.number(), error: z.string().nullable() })),
  })
  .meta({ id: 'WebhookDelivery' });

/** Service errors → the one JSON error shape. */
async function mapErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WebhookNotFoundError) throw errors.notFound(err.message);
    if (err instanceof WebhookInputError) throw new AppError(400, err.code, err.message, err.details);
    throw err;
  }
}

const tags = ['Webhooks'];
// Organization-wide: owners and admins, and no workflow- or team-restricted credential.
const access: Access = { scopes: ['webhooks:manage'], admin: true, restricted: 'refuse' };
const idParams = z.object({ id: z.string() });

/**
 * `/api/v1/webhooks`: endpoints of the caller's organization (webhooks:manage; owners and admins).
 * Secrets are in the answers of create and rotate-secret only (Cache-Control: no-store).
 */
export function webhookRoutes(d: { webhooks: WebhooksService; auth: AuthService; bodyLimit: string }): Router {
  const r = new Router({ prefix: '/api/v1/webhooks' });
  const w = d.webhooks;
  const org = (ctx: Context) => principalOf(ctx).orgId;
  const actor = (ctx: Context) => actorOf(principalOf(ctx), ctx.ip);
  r.use(authenticate(d.auth));
  r.use(jsonBody({ limit: d.bodyLimit }));

  r.get(
    '/',
    guard({ operationId: 'listWebhooks', summary: 'List webhook endpoints', tags, access, query: z.object(pageQueryShape), responses: { 200: { description: 'Endpoints, oldest first', schema: okPage(WebhookSchema) } } }, async (ctx, { query }) => {
      const page = paginate('webhooks', await w.list(org(ctx)), query, (e) => [e.created_at, e.id]);
      ctx.body = { success: true, data: page.items, next_cursor: page.nextCursor };
    }),
  );
  r.post(
    '/',
    guard({ operationId: 'createWebhook', summary: 'Create a webhook endpoint', tags, access, body: createBody, responses: { 201: { description: 'The endpoint, with its secret shown once', schema: ok(WebhookWithSecret) } } }, async (ctx, { body }) => {
      const { endpoint, secret } = await mapErrors(() => w.create(actor(ctx), org(ctx), body));
      ctx.status = 201;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { success: true, data: { ...endpoint, secret } };
    }),
  );
  r.get(
    '/:id',
    guard({ operationId: 'getWebhook', summary: 'Get a webhook endpoint', tags, access, params: idParams, responses: { 200: { description: 'The endpoint', schema: ok(WebhookSchema) } } }, async (ctx, { params }) => {
      ctx.body = { success: true, data: await mapErrors(() => w.get(org(ctx), params.id)) };
    }),
  );
  r.patch(
    '/:id',
    guard({ operationId: 'updateWebhook', summary: 'Change a webhook endpoint', tags, access, params: idParams, body: patchBody, responses: { 200: { description: 'The endpoint', schema: ok(WebhookSchema) } } }, async (ctx, { params, body }) => {
      ctx.body = { success: true, data: await mapErrors(() => w.update(actor(ctx), org(ctx), params.id, body)) };
    }),
  );
  r.delete(
    '/:id',
    guard({ operationId: 'deleteWebhook', summary: 'Delete a webhook endpoint', tags, access, params: idParams, responses: { 200: { description: 'Deleted', schema: ok(DeletedSchema) } } }, async (ctx, { params }) => {
      await mapErrors(() => w.remove(actor(ctx), org(ctx), params.id));
      ctx.body = { success: true, data: { id: params.id, deleted: true } };
    }),
  );
  r.post(
    '/:id/rotate-secret',
    guard(
      { operationId: 'rotateWebhookSecret', summary: 'A new signing secret (the previous one also signs for 24 hours)', tags, access, params: idParams, responses: { 200: { description: 'The endpoint, with its new secret shown once', schema: ok(WebhookWithSecret) } } },
      async (ctx, { params }) => {
        const { endpoint, secret } = await mapErrors(() => w.rotateSecret(actor(ctx), org(ctx), params.id));
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { success: true, data: { ...endpoint, secret } };
      },
    ),
  );
  r.post(
    '/:id/test',
    guard({ operationId: 'testWebhook', summary: 'Send a webhook.test event to this endpoint', tags, access, params: idParams, responses: { 202: { description: 'The queued delivery', schema: ok(DeliverySchema) } } }, async (ctx, { params }) => {
      ctx.status = 202;
      ctx.body = { success: true, data: await mapErrors(() => w.sendTest(actor(ctx), org(ctx), params.id)) };
    }),
  );
  r.get(
    '/:id/deliveries',
    guard(
      { operationId: 'listWebhookDeliveries', summary: "An endpoint's deliveries and their attempts, newest first", tags, access, params: idParams, query: deliveriesQuery, responses: { 200: { description: 'Deliveries', schema: okPage(DeliverySchema) } } },
      async (ctx, { params, query }) => {
        const before = query.cursor ? decodeCursor('deliveries', query.cursor, 2) : undefined;
        const rows = await mapErrors(() => w.listDeliveries(org(ctx), params.id, { status: query.status, limit: query.limit + 1, ...(before && { before: { createdAt: before[0], id: before[1] } }) }));
        const items = rows.slice(0, query.limit);
        const last = items[items.length - 1];
        ctx.body = { success: true, data: items, next_cursor: rows.length > query.limit ? encodeCursor('deliveries', [last.created_at, last.id]) : null };
      },
    ),
  );
  r.post(
    '/:id/deliveries/:deliveryId/retry',
    guard(
      { operationId: 'retryWebhookDelivery', summary: 'Attempt a delivery once more, now', tags, access, params: z.object({ id: z.string(), deliveryId: z.string() }), responses: { 202: { description: 'The delivery', schema: ok(DeliverySchema) } } },
      async (ctx, { params }) => {
        ctx.status = 202;
        ctx.body = { success: true, data: await mapErrors(() => w.retryDelivery(actor(ctx), org(ctx), params.id, params.deliveryId)) };
      },
    ),
  );
  return r;
}
