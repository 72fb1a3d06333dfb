import Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../services.js';
import { authenticate } from '../auth/middleware.js';
import { jsonBody } from '../http/body.js';
import { guard, type Access } from '../http/guard.js';
import { paginate, pageQueryShape } from '../http/pagination.js';
import { DeletedSchema, ok, okPage } from '../http/responses.js';
import { ROLES, type Role } from '../accounts/entities.js';
import type { MemberView } from '../accounts/service.js';
import { apiCaller } from './caller.js';

const role = z.enum(ROLES as [Role, ...Role[]]);

export const MemberSchema = z
  .object({ user_id: z.string(), email: z.string(), name: z.string().nullable(), role, team_id: z.string().nullable(), joined_at: z.string() })
  .meta({ id: 'Member' });
export const GrantSchema = z
  .object({ grant_id: z.string(), client_id: z.string(), client_name: z.string(), scopes: z.array(z.string()), created_at: z.string() })
  .meta({ id: 'Grant', description: "A member's consent to an OAuth client for this organization" });

const memberUpdate = z
  .strictObject({
    role: role.optional().meta({ description: 'Only an owner grants or takes away the owner role; the last owner stays' }),
    team_id: z.uuid({ message: 'team_id must be a UUID' }).nullable().optional().meta({ description: 'A team of the organization; null: no team' }),
  })
  .refine((v) => v.role !== undefined || v.team_id !== undefined, { message: 'give role and/or team_id', path: [] })
  .meta({ id: 'MemberUpdate' });

export function memberView(m: MemberView) {
  return { user_id: m.userId, email: m.email, name: m.name, role: m.role, team_id: m.teamId, joined_at: new Date(m.createdAt).toISOString() };
}

const tags = ['Members'];
const access: Access = { scopes: ['members:manage'], admin: true, restricted: 'refuse' };
const userParams = z.object({ user_id: z.string().max(100) });

/**
 * `/api/v1/members`: the organization's members, their role and team, their removal, and the grants
 * they gave apps (members:manage; owners and admins; unrestricted credentials).
 */
export function memberRoutes(s: Services): Router {
  const r = new Router({ prefix: '/api/v1/members' });
  r.use(authenticate(s.auth));
  r.use(jsonBody({ limit: s.config.bodyLimit }));

  r.get(
    '/',
    guard(
      {
        operationId: 'listMembers',
        summary: "List the organization's members",
        tags,
        access,
        query: z.object({ ...pageQueryShape, role: role.optional(), team_id: z.string().max(100).optional() }),
        responses: { 200: { description: 'Members, in the order they joined', schema: okPage(MemberSchema) } },
      },
      async (ctx, { query }) => {
        const page = await s.accounts.pageMembers(apiCaller(ctx).orgId, query);
        ctx.body = { success: true, data: page.items.map(memberView), next_cursor: page.nextCursor };
      },
    ),
  );
  r.get(
    '/:user_id',
    guard({ operationId: 'getMember', summary: 'Get a member', tags, access, params: userParams, responses: { 200: { description: 'The member', schema: ok(MemberSchema) } } }, async (ctx, { params }) => {
      ctx.body = { success: true, data: memberView(await s.accounts.getMember(apiCaller(ctx).orgId, params.user_id)) };
    }),
  );
  r.patch(
    '/:user_id',
    guard(
      {
        operationId: 'updateMember',
        summary: "Change a member's role and/or team",
        description: "A role change reaches the member's credentials at once (a demoted admin's keys and tokens lose admin powers).",
        tags,
        access,
        params: userParams,
        body: memberUpdate,
        errors: [409],
        responses: { 200: { description: 'The member', schema: ok(MemberSchema) } },
      },
      async (ctx, { params, body }) => {
        const c = apiCaller(ctx);
        await s.accounts.getMember(c.orgId, params.user_id);
        // Everything that can refuse is checked before anything changes.
        if (body.team_id) await s.accounts.getTeam(c.orgId, body.team_id);
        if (body.role !== undefined) await s.accounts.changeRole(c.actor, c.orgId, params.user_id, body.role, c.by);
        if (body.team_id !== undefined) await s.accounts.changeTeam(c.actor, c.orgId, params.user_id, body.team_id, c.by);
        ctx.body = { success: true, data: memberView(await s.accounts.getMember(c.orgId, params.user_id)) };
      },
    ),
  );
  r.delete(
    '/:user_id',
    guard(
      {
        operationId: 'removeMember',
        summary: 'Remove a member from the organization',
        description: "Ends the member's keys, sessions, grants and tokens for this organization at once. The last owner cannot be removed.",
        tags,
        access,
        params: userParams,
        errors: [409],
        responses: { 200: { description: 'Removed', schema: ok(DeletedSchema) } },
      },
      async (ctx, { params }) => {
        const c = apiCaller(ctx);
        await s.accounts.removeMember(c.actor, c.orgId, params.user_id, c.by);
        ctx.body = { success: true, data: { id: params.user_id, deleted: true } };
      },
    ),
  );
  r.get(
    '/:user_id/grants',
    guard(
      { operationId: 'listMemberGrants', summary: "The grants a member gave OAuth clients for this organization", tags, access, params: userParams, query: z.object(pageQueryShape), responses: { 200: { description: 'Grants, newest first', schema: okPage(GrantSchema) } } },
      async (ctx, { params, query }) => {
        const c = apiCaller(ctx);
        await s.accounts.getMember(c.orgId, params.user_id);
        const grants = (await s.consents.listForMember(c.orgId, params.user_id)).map((g) => ({
          grant_id: g.grantId,
          client_id: g.clientId,
          client_name: g.clientName,
          scopes: g.scopes,
          created_at: new Date(g.createdAt).toISOString(),
        }));
        const page = paginate('grants', grants, query, (g) => [g.created_at, g.grant_id], { desc: true });
        ctx.body = { success: true, data: page.items, next_cursor: page.nextCursor };
      },
    ),
  );
  r.delete(
    '/:user_id/grants/:grant_id',
    guard(
      {
        operationId: 'revokeMemberGrant',
        summary: "Revoke one of a member's grants: the app's tokens from it end at once",
        tags,
        access,
        params: z.object({ user_id: z.string().max(100), grant_id: z.string().max(200) }),
        responses: { 200: { description: 'Revoked', schema: ok(DeletedSchema) } },
      },
      async (ctx, { params }) => {
        const c = apiCaller(ctx);
        await s.accounts.getMember(c.orgId, params.user_id);
        await s.consents.revokeForMember(c.actor, c.orgId, params.user_id, params.grant_id);
        ctx.body = { success: true, data: { id: params.grant_id, deleted: true } };
      },
    ),
  );
  return r;
}
