import Router from '@koa/router';
import type { Context } from 'koa';
import { rollApiKeyInput, validate, type ApiKeysService, type Caller } from './service.js';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf, requireScope } from '../auth/middleware.js';
import { actorOf } from '../auth/principal.js';
import { errors } from '../http/errors.js';
import { jsonBody } from '../http/body.js';

export interface ApiKeyRouteDeps {
  apiKeys: ApiKeysService;
  auth: AuthService;
  bodyLimit: string;
}

/**
 * The management API (seed 002 paths). Callers: an API key or access token with api_keys:read /
 * api_keys:write, or a dashboard session. The organization is the caller's own.
 */
export function apiKeyRoutes(d: ApiKeyRouteDeps): Router {
  const r = new Router({ prefix: '/api/v1/auth/api-keys' });
  const caller = (ctx: Context): Caller => {
    const p = principalOf(ctx);
    return { actor: actorOf(p, ctx.ip), principal: p };
  };
  const body = (ctx: Context): Record<string, unknown> => {
    const b = (ctx.request as { body?: unknown }).body;
    if (b === undefined || b === null || (typeof b === 'object' && Object.keys(b).length === 0)) return {};
    if (typeof b !== 'object' || Array.isArray(b)) throw errors.validation('The request body must be a JSON object');
    return b as Record<string, unknown>;
  };
  r.use(authenticate(d.auth));
  r.use(jsonBody({ limit: d.bodyLimit }));

  r.get('/', requireScope('api_keys:read'), async (ctx) => {
    const c = caller(ctx);
    ctx.body = { success: true, data: await d.apiKeys.list(c, c.principal!.orgId) };
  });
  r.post('/', requireScope('api_keys:write'), async (ctx) => {
    const c = caller(ctx);
    const { key, apiKey } = await d.apiKeys.create(c, c.principal!.orgId, body(ctx) as never);
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { success: true, data: { ...apiKey, key } };
  });
  r.get('/:id', requireScope('api_keys:read'), async (ctx) => {
    ctx.body = { success: true, data: await d.apiKeys.get(caller(ctx), ctx.params.id) };
  });
  r.patch('/:id', requireScope('api_keys:write'), async (ctx) => {
    ctx.body = { success: true, data: await d.apiKeys.update(caller(ctx), ctx.params.id, body(ctx) as never) };
  });
  r.delete('/:id', requireScope('api_keys:write'), async (ctx) => {
    await d.apiKeys.revoke(caller(ctx), ctx.params.id);
    ctx.body = { success: true, data: { id: ctx.params.id, deleted: true } };
  });
  r.post('/:id/roll', requireScope('api_keys:write'), async (ctx) => {
    const { grace_seconds } = validate(rollApiKeyInput, body(ctx));
    const { key, apiKey } = await d.apiKeys.roll(caller(ctx), ctx.params.id, grace_seconds);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { success: true, data: { ...apiKey, key } };
  });
  return r;
}
