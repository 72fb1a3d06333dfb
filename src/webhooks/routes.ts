import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf } from '../auth/middleware.js';
import { actorOf } from '../auth/principal.js';
import { jsonBody, parseInput } from '../http/body.js';
import { AppError, errors } from '../http/errors.js';
import { requireOrgScope } from '../auth/access.js';
import { WebhookInputError, WebhookNotFoundError, type WebhooksService } from './service.js';

const createBody = z.strictObject({
  url: z.string().min(1).max(2048),
  events: z.array(z.string().min(1).max(100)).max(50).optional(),
  description: z.string().max(500).nullable().optional(),
});
const patchBody = z.strictObject({
  url: z.string().min(1).max(2048).optional(),
  events: z.array(z.string().min(1).max(100)).max(50).nullable().optional(),
  description: z.string().max(500).nullable().optional(),
  enabled: z.boolean().optional(),
});
const deliveriesQuery = z.object({
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});

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
  r.use(requireOrgScope('webhooks:manage'));
  r.use(jsonBody({ limit: d.bodyLimit }));

  r.get('/', async (ctx) => {
    ctx.body = { success: true, data: await w.list(org(ctx)) };
  });
  r.post('/', async (ctx) => {
    const b = parseInput(createBody, ctx.request.body);
    const { endpoint, secret } = await mapErrors(() => w.create(actor(ctx), org(ctx), b));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { success: true, data: { ...endpoint, secret } };
  });
  r.get('/:id', async (ctx) => {
    ctx.body = { success: true, data: await mapErrors(() => w.get(org(ctx), ctx.params.id)) };
  });
  r.patch('/:id', async (ctx) => {
    const b = parseInput(patchBody, ctx.request.body);
    ctx.body = { success: true, data: await mapErrors(() => w.update(actor(ctx), org(ctx), ctx.params.id, b)) };
  });
  r.delete('/:id', async (ctx) => {
    await mapErrors(() => w.remove(actor(ctx), org(ctx), ctx.params.id));
    ctx.body = { success: true, data: { id: ctx.params.id, deleted: true } };
  });
  r.post('/:id/rotate-secret', async (ctx) => {
    const { endpoint, secret } = await mapErrors(() => w.rotateSecret(actor(ctx), org(ctx), ctx.params.id));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { success: true, data: { ...endpoint, secret } };
  });
  r.post('/:id/test', async (ctx) => {
    ctx.status = 202;
    ctx.body = { success: true, data: await mapErrors(() => w.sendTest(actor(ctx), org(ctx), ctx.params.id)) };
  });
  r.get('/:id/deliveries', async (ctx) => {
    const q = parseInput(deliveriesQuery, ctx.query);
    ctx.body = { success: true, data: await mapErrors(() => w.listDeliveries(org(ctx), ctx.params.id, q)) };
  });
  r.post('/:id/deliveries/:deliveryId/retry', async (ctx) => {
    ctx.status = 202;
    ctx.body = { success: true, data: await mapErrors(() => w.retryDelivery(actor(ctx), org(ctx), ctx.params.id, ctx.params.deliveryId)) };
  });
  return r;
}
