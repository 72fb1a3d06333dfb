import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { createApiKeyInput, rollApiKeyInput, updateApiKeyInput, type ApiKeysService, type Caller } from '../apikeys/service.js';
import type { AuthService } from '../auth/service.js';
import { authenticate, principalOf } from '../auth/middleware.js';
import { actorOf } from '../auth/principal.js';
import { jsonBody } from '../http/body.js';
import { guard } from '../http/guard.js';
import { pageQueryShape } from '../http/pagination.js';
import { DeletedSchema, ok, okPage } from '../http/responses.js';

export interface ApiKeyRouteDeps {
  apiKeys: ApiKeysService;
  auth: AuthService;
  bodyLimit: string;
}

export const ApiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    display: z.string().meta({ description: '`sk-AbCd…wxyz` for keys the caller may manage; fully masked otherwise' }),
    masked: z.boolean(),
    org_id: z.string(),
    team_id: z.string().nullable(),
    workflow_id: z.string().nullable(),
    scopes: z.array(z.string()),
    status: z.enum(['active', 'expired']),
    created_by: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
    previous_secret_expires_at: z.string().nullable(),
    rate_limit: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: 'ApiKey' });

const ApiKeyWithSecret = ApiKeySchema.extend({ key: z.string().meta({ description: 'The full key: shown in this answer only' }) }).meta({ id: 'ApiKeyWithSecret' });
const idParams = z.object({ id: z.string().meta({ description: 'The key id' }) });
const listQuery = z.object({
  ...pageQueryShape,
  team_id: z.string().max(100).optional().meta({ description: 'Only keys restricted to this team' }),
  workflow_id: z.string().max(200).optional().meta({ description: 'Only keys restricted to this workflow' }),
});
const tags = ['API keys'];
const read = { scopes: ['api_keys:read'], restricted: 'allow' } as const;
const write = { scopes: ['api_keys:write'], restricted: 'allow' } as const;

/**
 * The management API. Callers: an API key or access token with api_keys:read / api_keys:write, or a
 * dashboard session. The organization is the caller's own. A restricted credential manages only keys
 * within its workflow or team (the service checks each key).
 */
export function apiKeyRoutes(d: ApiKeyRouteDeps): Router {
  const r = new Router({ prefix: '/api/v1/auth/api-keys' });
  const caller = (ctx: Context): Caller => {
    const p = principalOf(ctx);
    return { actor: actorOf(p, ctx.ip), principal: p };
  };
  r.use(authenticate(d.auth));
  r.use(jsonBody({ limit: d.bodyLimit }));

  r.get(
    '/',
    guard({ operationId: 'listApiKeys', summary: "List the organization's API keys", tags, access: read, query: listQuery, responses: { 200: { description: 'Keys, newest first', schema: okPage(ApiKeySchema) } } }, async (ctx, { query }) => {
      const c = caller(ctx);
      const page = await d.apiKeys.page(c, c.principal!.orgId, query);
      ctx.body = { success: true, data: page.items, next_cursor: page.nextCursor };
    }),
  );
  r.post(
    '/',
    guard(
      {
        operationId: 'createApiKey',
        summary: 'Create an API key',
        description: 'A delegated credential cannot mint more than it holds: its scopes, workflow, team and expiry bound the new key.',
        tags,
        access: write,
        body: createApiKeyInput,
        responses: { 201: { description: 'The key, with its secret shown once', schema: ok(ApiKeyWithSecret) } },
      },
      async (ctx, { body }) => {
        const c = caller(ctx);
        const { key, apiKey } = await d.apiKeys.create(c, c.principal!.orgId, body);
        ctx.status = 201;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { success: true, data: { ...apiKey, key } };
      },
    ),
  );
  r.get(
    '/:id',
    guard({ operationId: 'getApiKey', summary: 'Get an API key', tags, access: read, params: idParams, responses: { 200: { description: 'The key', schema: ok(ApiKeySchema) } } }, async (ctx, { params }) => {
      ctx.body = { success: true, data: await d.apiKeys.get(caller(ctx), params.id) };
    }),
  );
  r.patch(
    '/:id',
    guard(
      { operationId: 'updateApiKey', summary: "Rename an API key or narrow its scopes", tags, access: write, params: idParams, body: updateApiKeyInput, responses: { 200: { description: 'The key', schema: ok(ApiKeySchema) } } },
      async (ctx, { params, body }) => {
        ctx.body = { success: true, data: await d.apiKeys.update(caller(ctx), params.id, body) };
      },
    ),
  );
  r.delete(
    '/:id',
    guard({ operationId: 'deleteApiKey', summary: 'Delete (revoke) an API key, at once and for good', tags, access: write, params: idParams, responses: { 200: { description: 'Deleted', schema: ok(DeletedSchema) } } }, async (ctx, { params }) => {
      await d.apiKeys.revoke(caller(ctx), params.id);
      ctx.body = { success: true, data: { id: params.id, deleted: true } };
    }),
  );
  r.post(
    '/:id/roll',
    guard(
      {
        operationId: 'rollApiKey',
        summary: 'Roll an API key: a new secret, the old one valid for grace_seconds',
        tags,
        access: write,
        params: idParams,
        body: rollApiKeyInput,
        errors: [409],
        responses: { 200: { description: 'The key, with its new secret shown once', schema: ok(ApiKeyWithSecret) } },
      },
      async (ctx, { params, body }) => {
        const { key, apiKey } = await d.apiKeys.roll(caller(ctx), params.id, body.grace_seconds);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { success: true, data: { ...apiKey, key } };
      },
    ),
  );
  return r;
}
