import Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../services.js';
import { authenticate } from '../auth/middleware.js';
import { jsonBody } from '../http/body.js';
import { guard, type Access } from '../http/guard.js';
import { pageQueryShape } from '../http/pagination.js';
import { DeletedSchema, ok, okPage } from '../http/responses.js';
import { ROLES, type Role } from '../accounts/entities.js';
import type { Invitation } from '../accounts/invitations.js';
import { apiCaller } from './caller.js';

const role = z.enum(ROLES as [Role, ...Role[]]);

export const InvitationSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    role,
    team_id: z.string().nullable(),
    invited_by: z.string().nullable(),
    created_at: z.string(),
    expires_at: z.string(),
  })
  .meta({ id: 'Invitation' });
const InvitationWithLink = InvitationSchema.extend({
  url: z.string().meta({ description: 'The one-time link to hand to the person (works once, until expires_at): shown in this answer only' }),
}).meta({ id: 'InvitationWithLink' });

export const invitationInput = z
  .strictObject({
    email: z.string().trim().min(3).max(320).meta({ description: 'Who is invited' }),
    role: role.default('member').meta({ description: 'Only an owner invites an owner' }),
    team_id: z.uuid({ message: 'team_id must be a UUID' }).nullable().optional(),
  })
  .meta({ id: 'InvitationCreate' });

export function invitationView(i: Invitation) {
  return {
    id: i.id,
    email: i.email,
    role: i.role,
    team_id: i.teamId,
    invited_by: i.invitedBy,
    created_at: i.createdAt.toISOString(),
    expires_at: i.expiresAt.toISOString(),
  };
}

const tags = ['Invitations'];
const access: Access = { scopes: ['members:manage'], admin: true, restricted: 'refuse' };

/** `/api/v1/invitations`: one-time links that add a member (members:manage; owners and admins). */
export function invitationRoutes(s: Services): Router {
  const r = new Router({ prefix: '/api/v1/invitations' });
  r.use(authenticate(s.auth));
  r.use(jsonBody({ limit: s.config.bodyLimit }));

  r.get(
    '/',
    guard({ operationId: 'listInvitations', summary: 'Pending invitations', tags, access, query: z.object(pageQueryShape), responses: { 200: { description: 'Invitations, newest first', schema: okPage(InvitationSchema) } } }, async (ctx, { query }) => {
      const page = await s.invitations.pagePending(apiCaller(ctx).orgId, query);
      ctx.body = { success: true, data: page.items.map(invitationView), next_cursor: page.nextCursor };
    }),
  );
  r.post(
    '/',
    guard(
      {
        operationId: 'createInvitation',
        summary: 'Invite someone: answers the one-time link, once',
        tags,
        access,
        body: invitationInput,
        errors: [409],
        responses: { 201: { description: 'The invitation and its link', schema: ok(InvitationWithLink) } },
      },
      async (ctx, { body }) => {
        const c = apiCaller(ctx);
        const { invitation, token } = await s.invitations.invite(c.actor, c.orgId, { email: body.email, role: body.role, teamId: body.team_id ?? null }, c.by);
        ctx.status = 201;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { success: true, data: { ...invitationView(invitation), url: `${s.config.issuer}/dashboard/invitations/${token}` } };
      },
    ),
  );
  r.delete(
    '/:id',
    guard(
      { operationId: 'revokeInvitation', summary: 'Withdraw a pending invitation: its link stops working', tags, access, params: z.object({ id: z.string().max(100) }), responses: { 200: { description: 'Revoked', schema: ok(DeletedSchema) } } },
      async (ctx, { params }) => {
        const c = apiCaller(ctx);
        await s.invitations.revoke(c.actor, c.orgId, params.id, c.by);
        ctx.body = { success: true, data: { id: params.id, deleted: true } };
      },
    ),
  );
  return r;
}
