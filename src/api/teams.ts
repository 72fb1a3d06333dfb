import Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../services.js';
import { authenticate } from '../auth/middleware.js';
import { jsonBody } from '../http/body.js';
import { guard, type Access } from '../http/guard.js';
import { paginate, pageQueryShape } from '../http/pagination.js';
import { ok, okPage } from '../http/responses.js';
import type { Team } from '../accounts/entities.js';
import { deleteTeam } from '../apikeys/team-deletion.js';
import { apiCaller } from './caller.js';

export const TeamSchema = z.object({ id: z.string(), name: z.string(), member_count: z.number().int(), created_at: z.string() }).meta({ id: 'Team' });
const teamInput = z.strictObject({ name: z.string().trim().min(1, 'name is required').max(200) }).meta({ id: 'TeamInput' });
const DeletedTeamSchema = z
  .object({ id: z.string(), deleted: z.literal(true), revoked_api_keys: z.array(z.string()).meta({ description: 'Keys restricted to the team, revoked with it' }) })
  .meta({ id: 'DeletedTeam' });

const view = (t: Team, memberCount: number) => ({ id: t.id, name: t.name, member_count: memberCount, created_at: t.createdAt.toISOString() });
const tags = ['Teams'];
const access: Access = { scopes: ['members:manage'], admin: true, restricted: 'refuse' };
const params = z.object({ id: z.string().max(100) });

/** `/api/v1/teams` (members:manage; owners and admins; unrestricted credentials). */
export function teamRoutes(s: Services): Router {
  const r = new Router({ prefix: '/api/v1/teams' });
  r.use(authenticate(s.auth));
  r.use(jsonBody({ limit: s.config.bodyLimit }));
  const withCount = async (orgId: string, id: string) => {
    const t = (await s.accounts.listTeamsWithCounts(orgId)).find((x) => x.id === id);
    return t ? view(t, t.memberCount) : undefined;
  };

  r.get(
    '/',
    guard({ operationId: 'listTeams', summary: "The organization's teams", tags, access, query: z.object(pageQueryShape), responses: { 200: { description: 'Teams, oldest first', schema: okPage(TeamSchema) } } }, async (ctx, { query }) => {
      const teams = (await s.accounts.listTeamsWithCounts(apiCaller(ctx).orgId)).map((t) => view(t, t.memberCount));
      const page = paginate('teams', teams, query, (t) => [t.created_at, t.id]);
      ctx.body = { success: true, data: page.items, next_cursor: page.nextCursor };
    }),
  );
  r.post(
    '/',
    guard({ operationId: 'createTeam', summary: 'Create a team', tags, access, body: teamInput, errors: [409], responses: { 201: { description: 'The team', schema: ok(TeamSchema) } } }, async (ctx, { body }) => {
      const c = apiCaller(ctx);
      const team = await s.accounts.createTeam(c.actor, { orgId: c.orgId, name: body.name });
      ctx.status = 201;
      ctx.body = { success: true, data: view(team, 0) };
    }),
  );
  r.patch(
    '/:id',
    guard({ operationId: 'updateTeam', summary: 'Rename a team', tags, access, params, body: teamInput, errors: [409], responses: { 200: { description: 'The team', schema: ok(TeamSchema) } } }, async (ctx, { params: p, body }) => {
      const c = apiCaller(ctx);
      await s.accounts.renameTeam(c.actor, c.orgId, p.id, body.name);
      ctx.body = { success: true, data: await withCount(c.orgId, p.id) };
    }),
  );
  r.delete(
    '/:id',
    guard(
      {
        operationId: 'deleteTeam',
        summary: 'Delete a team',
        description:
          'Members stay in the organization without a team; pending invitations to the team invite to no team. API keys restricted to the team cannot outlive it: with live keys the answer is 409 TEAM_HAS_KEYS (details.api_keys) unless `revoke_keys=true`, which revokes them with the team.',
        tags,
        access,
        params,
        query: z.object({ revoke_keys: z.enum(['true', 'false']).optional().meta({ description: "Revoke the team's API keys with it" }) }),
        errors: [409],
        responses: { 200: { description: 'Deleted', schema: ok(DeletedTeamSchema) } },
      },
      async (ctx, { params: p, query }) => {
        const c = apiCaller(ctx);
        const { revokedApiKeys } = await deleteTeam(s, { actor: c.actor, principal: c.principal }, c.orgId, p.id, { revokeKeys: query.revoke_keys === 'true' });
        ctx.body = { success: true, data: { id: p.id, deleted: true, revoked_api_keys: revokedApiKeys } };
      },
    ),
  );
  return r;
}
