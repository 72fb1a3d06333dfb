import type { Services } from '../services.js';
import { CLI_ACTOR } from '../audit/service.js';
import { rotateKeys, readKeys, ensureKeys, publicView } from '../oauth/signing-keys.js';
import type { Role } from '../accounts/entities.js';
import { print, required, UsageError } from './output.js';
import { WebhookInputError } from '../webhooks/service.js';
import { markEmailVerified } from '../accounts/email-verification.js';
import { API_KEY_COMMANDS, API_KEY_OPTIONS } from './api-keys.js';
import { RATE_LIMIT_COMMANDS, RATE_LIMIT_OPTIONS } from './rate-limits.js';
import { clientCreateFromFlags, MANAGEMENT_COMMANDS, MANAGEMENT_OPTIONS } from './management.js';

export interface CommandContext {
  values: Record<string, any>;
  json: boolean;
}

export type Command = (s: Services, c: CommandContext) => Promise<void>;

/** Option names per command, for node:util parseArgs. `multiple` options may repeat. */
export const OPTIONS: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
  json: { type: 'boolean' },
  name: { type: 'string' },
  plan: { type: 'string' },
  org: { type: 'string' },
  email: { type: 'string' },
  password: { type: 'string' },
  role: { type: 'string' },
  team: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  'grant-type': { type: 'string', multiple: true },
  'auth-method': { type: 'string' },
  'jwks-file': { type: 'string' },
  'jwks-uri': { type: 'string' },
  scope: { type: 'string' },
  introspect: { type: 'boolean' },
  platform: { type: 'boolean' },
  url: { type: 'string' },
  event: { type: 'string', multiple: true },
  description: { type: 'string' },
  ...API_KEY_OPTIONS,
  ...RATE_LIMIT_OPTIONS,
  ...MANAGEMENT_OPTIONS,
};

export const COMMANDS: Record<string, Command> = {
  ...API_KEY_COMMANDS,
  ...RATE_LIMIT_COMMANDS,
  ...MANAGEMENT_COMMANDS,
  'orgs create': async (s, { values, json }) => {
    const org = await s.accounts.createOrganization(CLI_ACTOR, { name: required(values, 'name'), plan: values.plan });
    print(json, { id: org.id, name: org.name, plan: org.plan });
  },
  'orgs list': async (s, { json }) => {
    const orgs = await s.accounts.listOrganizations();
    const items = orgs.map((o) => ({ id: o.id, name: o.name, plan: o.plan }));
    print(json, { items }, items.map((o) => `${o.id}  ${o.name}  (${o.plan})`).join('\n') || 'no organizations');
  },
  'teams create': async (s, { values, json }) => {
    const team = await s.accounts.createTeam(CLI_ACTOR, { orgId: required(values, 'org'), name: required(values, 'name') });
    print(json, { id: team.id, org_id: team.orgId, name: team.name });
  },
  'users create': async (s, { values, json }) => {
    const { user, membership } = await s.accounts.createUser(CLI_ACTOR, {
      email: required(values, 'email'),
      password: required(values, 'password'),
      orgId: required(values, 'org'),
      role: (values.role ?? 'member') as Role,
      teamId: values.team,
    });
    print(json, { id: user.id, email: user.email, org_id: membership.orgId, role: membership.role, team_id: membership.teamId });
  },
  'users verify-email': async (s, { values, json }) => {
    const u = await markEmailVerified(s.ds, s.audit, CLI_ACTOR, required(values, 'email'));
    print(json, { id: u.id, email: u.email, email_verified: true, email_verified_at: u.verifiedAt.toISOString() }, `${u.email}: verified (email_verified: true in ID tokens and userinfo)`);
  },
  'clients create': async (s, { values, json }) => {
    // --platform: a resource server of the platform's own services, which sees every organization.
    const { client, clientSecret } = await s.clients.register(CLI_ACTOR, values.platform ? null : required(values, 'org'), clientCreateFromFlags(values));
    const out = { id: client.client_id, ...client, ...(clientSecret && { client_secret: clientSecret }) };
    print(
      json,
      out,
      [
        `client_id: ${client.client_id}`,
        ...(clientSecret ? [`client_secret: ${clientSecret}`, '(the secret is shown only now; store it safely)'] : []),
        `grant_types: ${client.grant_types.join(' ')}`,
        `auth_method: ${client.token_endpoint_auth_method}`,
      ].join('\n'),
    );
  },
  'clients list': async (s, { values, json }) => {
    const items = await s.clients.list(required(values, 'org'));
    print(json, { items }, items.map((c) => `${c.client_id}  ${c.client_name}  [${c.grant_types.join(', ')}]`).join('\n') || 'no clients');
  },
  'webhooks create': async (s, { values, json }) => {
    const { endpoint, secret } = await s.webhooks
      .create(CLI_ACTOR, required(values, 'org'), { url: required(values, 'url'), events: values.event, description: values.description })
      .catch((err) => {
        throw err instanceof WebhookInputError ? new UsageError(err.message) : err;
      });
    print(json, { ...endpoint, secret }, [`id: ${endpoint.id}`, `url: ${endpoint.url}`, `events: ${endpoint.events?.join(' ') ?? 'all'}`, `secret: ${secret}`, '(the secret is shown only now; store it safely)'].join('\n'));
  },
  'webhooks list': async (s, { values, json }) => {
    const items = await s.webhooks.list(required(values, 'org'));
    print(json, { items }, items.map((e) => `${e.id}  ${e.url}  [${e.events?.join(', ') ?? 'all'}]${e.enabled ? '' : '  (disabled)'}`).join('\n') || 'no webhook endpoints');
  },
};

/** Key commands work on the keys directory alone; a rotation returns what the audit log should say. */
export const KEY_COMMANDS: Record<string, (keysDir: string, maxTokenLifetime: number, c: CommandContext) => Promise<void | Record<string, unknown>>> = {
  'keys generate': async (dir, _max, { json }) => {
    const created = await ensureKeys(dir);
    const keys = readKeys(dir).map(publicView);
    print(json, { created, keys }, created ? `generated ${keys.length} keys in ${dir}` : `keys already exist in ${dir} (use keys rotate)`);
  },
  'keys rotate': async (dir, max, { json }) => {
    await ensureKeys(dir);
    const { added, removed } = await rotateKeys(dir, max);
    const keys = readKeys(dir).map(publicView);
    print(json, { added: added.map((k) => k.kid), removed, keys }, `new active keys: ${added.map((k) => `${k.kid} (${k.alg})`).join(', ')}; restart instances to pick them up`);
    return { added: added.map((k) => ({ kid: k.kid, alg: k.alg })), removed };
  },
  'keys list': async (dir, _max, { json }) => {
    const keys = readKeys(dir).map(publicView);
    print(json, { keys }, keys.map((k) => `${k.kid}  ${k.alg}  ${k.status}  ${k.created_at}`).join('\n') || 'no keys');
  },
};

export { UsageError };
