import Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../services.js';
import { authenticate } from '../auth/middleware.js';
import { jsonBody } from '../http/body.js';
import { guard, type Access } from '../http/guard.js';
import { pageQueryShape } from '../http/pagination.js';
import { DeletedSchema, ok, okPage } from '../http/responses.js';
import { CLIENT_KINDS, clientRegistrationInput, clientView, clientUpdateInput, rotateSecretInput } from '../oauth/clients-service.js';
import { apiCaller } from './caller.js';

export const ClientSchema = z
  .object({
    client_id: z.string(),
    client_name: z.string(),
    org_id: z.string(),
    kind: z.enum(CLIENT_KINDS),
    redirect_uris: z.array(z.string()),
    grant_types: z.array(z.string()),
    response_types: z.array(z.string()),
    token_endpoint_auth_method: z.string(),
    scope: z.string(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
    jwks_uri: z.string().optional(),
    introspection: z.boolean(),
    client_id_issued_at: z.number().int(),
    previous_secret_expires_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Client', description: 'Client metadata under RFC 7591 names, plus Flowgate fields' });

const ClientWithSecret = ClientSchema.extend({
  client_secret: z.string().optional().meta({ description: 'Shown in this answer only (clients that authenticate with a secret)' }),
  client_secret_expires_at: z.literal(0).optional().meta({ description: 'RFC 7591 §3.2.1: 0, the secret does not expire' }),
}).meta({ id: 'ClientWithSecret' });

const params = z.object({ client_id: z.string().max(200) });
const tags = ['OAuth clients'];
const access: Access = { scopes: ['clients:manage'], admin: true, restricted: 'refuse' };

/** `/api/v1/clients`: the organization's OAuth clients (clients:manage; owners and admins; unrestricted credentials). */
export function clientRoutes(s: Services): Router {
  const r = new Router({ prefix: '/api/v1/clients' });
  r.use(authenticate(s.auth));
  r.use(jsonBody({ limit: s.config.bodyLimit }));
  const withSecret = (secret: string | undefined) => (secret ? { client_secret: secret, client_secret_expires_at: 0 as const } : {});

  r.get(
    '/',
    guard(
      {
        operationId: 'listClients',
        summary: "List the organization's OAuth clients",
        tags,
        access,
        query: z.object({ ...pageQueryShape, kind: z.enum(CLIENT_KINDS).optional() }),
        responses: { 200: { description: 'Clients, oldest first', schema: okPage(ClientSchema) } },
      },
      async (ctx, { query }) => {
        const page = await s.clients.page(apiCaller(ctx).orgId, query);
        ctx.body = { success: true, data: page.items, next_cursor: page.nextCursor };
      },
    ),
  );
  r.post(
    '/',
    guard(
      { operationId: 'createClient', summary: 'Register an OAuth client', tags, access, body: clientRegistrationInput, responses: { 201: { description: 'The client; its secret is shown once', schema: ok(ClientWithSecret) } } },
      async (ctx, { body }) => {
        const c = apiCaller(ctx);
        const { client, clientSecret } = await s.clients.register(c.actor, c.orgId, body);
        ctx.status = 201;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { success: true, data: { ...client, ...withSecret(clientSecret) } };
      },
    ),
  );
  r.get(
    '/:client_id',
    guard({ operationId: 'getClient', summary: 'Get an OAuth client', tags, access, params, responses: { 200: { description: 'The client', schema: ok(ClientSchema) } } }, async (ctx, { params: p }) => {
      const row = await s.clients.getForOrg(apiCaller(ctx).orgId, p.client_id);
      ctx.body = { success: true, data: clientView(row) };
    }),
  );
  r.patch(
    '/:client_id',
    guard(
      {
        operationId: 'updateClient',
        summary: "Change an OAuth client's metadata",
        description: 'The given fields replace the stored ones; the result obeys the registration rules. The authentication method changes only between client_secret_basic and client_secret_post.',
        tags,
        access,
        params,
        body: clientUpdateInput,
        responses: { 200: { description: 'The client', schema: ok(ClientSchema) } },
      },
      async (ctx, { params: p, body }) => {
        const c = apiCaller(ctx);
        ctx.body = { success: true, data: await s.clients.update(c.actor, c.orgId, p.client_id, body) };
      },
    ),
  );
  r.delete(
    '/:client_id',
    guard(
      { operationId: 'deleteClient', summary: 'Delete an OAuth client; its grants and tokens end at once', tags, access, params, responses: { 200: { description: 'Deleted', schema: ok(DeletedSchema) } } },
      async (ctx, { params: p }) => {
        const c = apiCaller(ctx);
        await s.clients.delete(c.actor, c.orgId, p.client_id);
        ctx.body = { success: true, data: { id: p.client_id, deleted: true } };
      },
    ),
  );
  r.post(
    '/:client_id/rotate-secret',
    guard(
      {
        operationId: 'rotateClientSecret',
        summary: 'A new client secret, shown once; the old one works for grace_seconds more',
        tags,
        access,
        params,
        body: rotateSecretInput,
        errors: [409],
        responses: { 200: { description: 'The client with its new secret', schema: ok(ClientWithSecret) } },
      },
      async (ctx, { params: p, body }) => {
        const c = apiCaller(ctx);
        const { client, clientSecret } = await s.clients.rotateSecret(c.actor, c.orgId, p.client_id, body.grace_seconds ?? 0);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { success: true, data: { ...client, ...withSecret(clientSecret) } };
      },
    ),
  );
  return r;
}
