import { readFileSync } from 'node:fs';
import { CLI_ACTOR } from '../audit/service.js';
import { parse } from '../http/guard.js';
import { errors } from '../http/errors.js';
import { clientRegistrationInput, clientUpdateInput, clientView, rotateSecretInput } from '../oauth/clients-service.js';
import { ROLES, type Role } from '../accounts/entities.js';
import { deleteTeam } from '../apikeys/team-deletion.js';
import { memberView } from '../api/members.js';
import { invitationInput, invitationView } from '../api/invitations.js';
import { organizationUpdate, organizationView } from '../api/organization.js';
import type { Services } from '../services.js';
import type { Command } from './commands.js';
import { print, required, UsageError } from './output.js';

/** Options of the management commands, spread into OPTIONS. */
export const MANAGEMENT_OPTIONS = {
  user: { type: 'string' },
  'no-introspect': { type: 'boolean' },
  'revoke-keys': { type: 'boolean' },
  'allow-query-api-key': { type: 'string' },
} as const;

export const MANAGEMENT_USAGE = `  clients update --id ID [--name N] [--redirect-uri U]... [--grant-type G]... [--auth-method M]
                 [--scope "S"] [--jwks-file F | --jwks-uri U] [--introspect | --no-introspect]
  clients delete --id ID     clients rotate-secret --id ID [--grace-seconds N]
  members list --org ID [--role R] [--team ID]
  members update --org ID --user ID [--role owner|admin|member] [--team ID|none]
  members remove --org ID --user ID
  invitations create --org ID --email E [--role R] [--team ID]     invitations list --org ID
  invitations revoke --org ID --id ID
  teams list --org ID     teams update --org ID --id ID --name N     teams delete --org ID --id ID [--revoke-keys]
  orgs update --org ID [--name N] [--allow-query-api-key true|false]`;

/** Request fields as the CLI spells them (the services and the API use the field names). */
export const FLAG_OF: Record<string, string> = {
  client_name: '--name',
  redirect_uris: '--redirect-uri',
  grant_types: '--grant-type',
  token_endpoint_auth_method: '--auth-method',
  scope: '--scope',
  scopes: '--scopes',
  jwks: '--jwks-file',
  jwks_uri: '--jwks-uri',
  introspection: '--introspect',
  grace_seconds: '--grace-seconds',
  preset: '--preset',
  team_id: '--team',
  workflow_id: '--workflow',
  expires_at: '--expires-at',
  name: '--name',
  email: '--email',
  role: '--role',
  allow_query_api_key: '--allow-query-api-key',
  plan: '--plan',
  password: '--password',
};

function jwksFile(values: Record<string, any>): unknown {
  if (!values['jwks-file']) return undefined;
  try {
    return JSON.parse(readFileSync(String(values['jwks-file']), 'utf8'));
  } catch {
    throw new UsageError(`--jwks-file: ${values['jwks-file']} is not a readable JSON file`);
  }
}

function seconds(values: Record<string, any>): number | undefined {
  const raw = values['grace-seconds'];
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(String(raw))) throw new UsageError('--grace-seconds must be a whole number of seconds');
  return Number(raw);
}

function role(values: Record<string, any>): Role | undefined {
  if (values.role === undefined) return undefined;
  if (!ROLES.includes(values.role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
  return values.role as Role;
}

/** The client named by --id, whichever organization holds it (the CLI acts as the operator). */
async function clientOrg(s: Services, id: string): Promise<string | null> {
  const row = await s.clients.get(id);
  if (!row) throw errors.notFound(`OAuth client ${id} not found`);
  return row.orgId;
}

function clientLines(c: ReturnType<typeof clientView>, secret?: string): string {
  return [
    `client_id: ${c.client_id}`,
    `client_name: ${c.client_name}`,
    ...(secret ? [`client_secret: ${secret}`, '(the secret is shown only now; store it safely)'] : []),
    ...(c.previous_secret_expires_at ? [`previous secret valid until: ${c.previous_secret_expires_at}`] : []),
    `grant_types: ${c.grant_types.join(' ')}`,
    `auth_method: ${c.token_endpoint_auth_method}`,
  ].join('\n');
}

/** The CLI builds the API's request from its flags and parses it with the API's schema. */
export function clientCreateFromFlags(values: Record<string, any>) {
  return parse(clientRegistrationInput, { client_name: required(values, 'name'), ...clientMetadataFlags(values) });
}

/** The client metadata a create or an update takes from the same flags (RFC 7591 names). */
function clientMetadataFlags(values: Record<string, any>) {
  return {
    ...(values['redirect-uri'] && { redirect_uris: values['redirect-uri'] }),
    ...(values['grant-type'] && { grant_types: values['grant-type'] }),
    ...(values['auth-method'] && { token_endpoint_auth_method: values['auth-method'] }),
    ...(values['jwks-file'] && { jwks: jwksFile(values) }),
    ...(values['jwks-uri'] && { jwks_uri: values['jwks-uri'] }),
    ...(values.scope !== undefined && { scope: values.scope }),
    ...(values.introspect && { introspection: true }),
  };
}

export const MANAGEMENT_COMMANDS: Record<string, Command> = {
  'clients update': async (s, { values, json }) => {
    const id = required(values, 'id');
    if (values.introspect && values['no-introspect']) throw new UsageError('give --introspect or --no-introspect, not both');
    const input = parse(clientUpdateInput, {
      ...(values.name !== undefined && { client_name: values.name }),
      ...clientMetadataFlags(values),
      ...(values['no-introspect'] && { introspection: false }),
    });
    const client = await s.clients.update(CLI_ACTOR, await clientOrg(s, id), id, input);
    print(json, { id: client.client_id, ...client }, clientLines(client));
  },
  'clients delete': async (s, { values, json }) => {
    const id = required(values, 'id');
    await s.clients.delete(CLI_ACTOR, await clientOrg(s, id), id);
    print(json, { id, deleted: true }, `deleted ${id}`);
  },
  'clients rotate-secret': async (s, { values, json }) => {
    const id = required(values, 'id');
    const { grace_seconds } = parse(rotateSecretInput, { ...(seconds(values) !== undefined && { grace_seconds: seconds(values) }) });
    const { client, clientSecret } = await s.clients.rotateSecret(CLI_ACTOR, await clientOrg(s, id), id, grace_seconds ?? 0);
    print(json, { id: client.client_id, ...client, client_secret: clientSecret }, clientLines(client, clientSecret));
  },
  'members list': async (s, { values, json }) => {
    const orgId = required(values, 'org');
    const r = role(values);
    const items = [];
    let cursor: string | undefined;
    do {
      const page = await s.accounts.pageMembers(orgId, { cursor, limit: 200, ...(r && { role: r }), ...(values.team && { team_id: values.team }) });
      items.push(...page.items.map(memberView));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    print(json, { items }, items.map((m) => `${m.user_id}  ${m.email}  ${m.role}${m.team_id ? `  team ${m.team_id}` : ''}`).join('\n') || 'no members');
  },
  'members update': async (s, { values, json }) => {
    const orgId = required(values, 'org');
    const userId = required(values, 'user');
    const r = role(values);
    const team = values.team === undefined ? undefined : values.team === 'none' ? null : String(values.team);
    if (r === undefined && team === undefined) throw new UsageError('give --role and/or --team');
    await s.accounts.getMember(orgId, userId);
    if (team) await s.accounts.getTeam(orgId, team);
    if (r) await s.accounts.changeRole(CLI_ACTOR, orgId, userId, r);
    if (team !== undefined) await s.accounts.changeTeam(CLI_ACTOR, orgId, userId, team);
    const m = memberView(await s.accounts.getMember(orgId, userId));
    print(json, { id: m.user_id, ...m }, `${m.email}: ${m.role}${m.team_id ? `, team ${m.team_id}` : ', no team'}`);
  },
  'members remove': async (s, { values, json }) => {
    const orgId = required(values, 'org');
    const userId = required(values, 'user');
    await s.accounts.removeMember(CLI_ACTOR, orgId, userId);
    print(json, { id: userId, deleted: true }, `removed ${userId}`);
  },
  'invitations create': async (s, { values, json }) => {
    const orgId = required(values, 'org');
    const input = parse(invitationInput, { email: required(values, 'email'), ...(values.role && { role: values.role }), ...(values.team && { team_id: values.team }) });
    const { invitation, token } = await s.invitations.invite(CLI_ACTOR, orgId, { email: input.email, role: input.role, teamId: input.team_id ?? null });
    const url = `${s.config.issuer}/dashboard/invitations/${token}`;
    print(json, { ...invitationView(invitation), url }, [`id: ${invitation.id}`, `url: ${url}`, `(the link works once, until ${invitation.expiresAt.toISOString()}; it is shown only now)`].join('\n'));
  },
  'invitations list': async (s, { values, json }) => {
    const items = (await s.invitations.listPending(required(values, 'org'))).map(invitationView);
    print(json, { items }, items.map((i) => `${i.id}  ${i.email}  ${i.role}  expires ${i.expires_at}`).join('\n') || 'no pending invitations');
  },
  'invitations revoke': async (s, { values, json }) => {
    const id = required(values, 'id');
    await s.invitations.revoke(CLI_ACTOR, required(values, 'org'), id);
    print(json, { id, deleted: true }, `revoked ${id}`);
  },
  'teams list': async (s, { values, json }) => {
    const items = (await s.accounts.listTeamsWithCounts(required(values, 'org'))).map((t) => ({ id: t.id, name: t.name, member_count: t.memberCount, created_at: t.createdAt.toISOString() }));
    print(json, { items }, items.map((t) => `${t.id}  ${t.name}  (${t.member_count} members)`).join('\n') || 'no teams');
  },
  'teams update': async (s, { values, json }) => {
    const team = await s.accounts.renameTeam(CLI_ACTOR, required(values, 'org'), required(values, 'id'), required(values, 'name'));
    print(json, { id: team.id, name: team.name });
  },
  'teams delete': async (s, { values, json }) => {
    const id = required(values, 'id');
    const { revokedApiKeys } = await deleteTeam(s, { actor: CLI_ACTOR }, required(values, 'org'), id, { revokeKeys: !!values['revoke-keys'] });
    print(json, { id, deleted: true, revoked_api_keys: revokedApiKeys }, `deleted ${id}${revokedApiKeys.length ? `; revoked ${revokedApiKeys.length} API key(s)` : ''}`);
  },
  'orgs update': async (s, { values, json }) => {
    const orgId = required(values, 'org');
    const raw = values['allow-query-api-key'];
    if (raw !== undefined && raw !== 'true' && raw !== 'false') throw new UsageError('--allow-query-api-key must be true or false');
    const input = parse(organizationUpdate, { ...(values.name !== undefined && { name: values.name }), ...(raw !== undefined && { allow_query_api_key: raw === 'true' }) });
    if (input.name === undefined && input.allow_query_api_key === undefined) throw new UsageError('give --name and/or --allow-query-api-key');
    const org = await s.accounts.updateOrganization(CLI_ACTOR, orgId, {
      ...(input.name !== undefined && { name: input.name }),
      ...(input.allow_query_api_key !== undefined && { settings: { allowQueryApiKey: input.allow_query_api_key } }),
    });
    print(json, organizationView(org, s.config));
  },
};
