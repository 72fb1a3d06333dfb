import { CLI_ACTOR } from '../audit/service.js';
import { createApiKeyInput } from '../apikeys/service.js';
import { parse } from '../http/guard.js';
import type { Command } from './commands.js';
import { print, required, UsageError } from './output.js';

/** `api-keys` command options, spread into OPTIONS. */
export const API_KEY_OPTIONS = {
  scopes: { type: 'string' },
  preset: { type: 'string' },
  workflow: { type: 'string' },
  'expires-at': { type: 'string' },
  id: { type: 'string' },
  'grace-seconds': { type: 'string' },
} as const;

export const API_KEY_USAGE = `  api-keys create --org ID --name N (--scopes a,b | --preset read_only|read_write|full_access)
                  [--team ID] [--workflow ID] [--expires-at ISO]
  api-keys list --org ID     api-keys revoke --id ID     api-keys roll --id ID [--grace-seconds N]`;

/** The CLI acts as the operator: no ownership rules, every organization. */
export const API_KEY_COMMANDS: Record<string, Command> = {
  'api-keys create': async (s, { values, json }) => {
    if (!values.scopes === !values.preset) throw new UsageError('give exactly one of --scopes or --preset');
    const input = parse(createApiKeyInput, {
      name: required(values, 'name'),
      ...(values.scopes && { scopes: String(values.scopes) }),
      ...(values.preset && { preset: values.preset }),
      ...(values.team && { team_id: values.team }),
      ...(values.workflow && { workflow_id: values.workflow }),
      ...(values['expires-at'] && { expires_at: values['expires-at'] }),
    });
    const { key, apiKey } = await s.apiKeys.create({ actor: CLI_ACTOR }, required(values, 'org'), input);
    print(
      json,
      { ...apiKey, key },
      [
        `id: ${apiKey.id}`,
        `key: ${key}`,
        '(the key is shown only now; store it safely)',
        `scopes: ${apiKey.scopes.join(' ')}`,
        ...(apiKey.workflow_id ? [`workflow: ${apiKey.workflow_id}`] : []),
        ...(apiKey.expires_at ? [`expires_at: ${apiKey.expires_at}`] : []),
      ].join('\n'),
    );
  },
  'api-keys list': async (s, { values, json }) => {
    const items = await s.apiKeys.list({ actor: CLI_ACTOR }, required(values, 'org'));
    print(
      json,
      { items },
      items.map((k) => `${k.id}  ${k.display}  ${k.name}  [${k.scopes.join(' ')}]  ${k.status}  last used ${k.last_used_at ?? 'never'}`).join('\n') || 'no API keys',
    );
  },
  'api-keys revoke': async (s, { values, json }) => {
    const id = required(values, 'id');
    await s.apiKeys.revoke({ actor: CLI_ACTOR }, id);
    print(json, { id, revoked: true }, `revoked ${id}`);
  },
  'api-keys roll': async (s, { values, json }) => {
    const raw = values['grace-seconds'];
    if (raw !== undefined && !/^\d+$/.test(raw)) throw new UsageError('--grace-seconds must be a whole number of seconds');
    const { key, apiKey } = await s.apiKeys.roll({ actor: CLI_ACTOR }, required(values, 'id'), raw === undefined ? undefined : Number(raw));
    print(
      json,
      { ...apiKey, key },
      [`id: ${apiKey.id}`, `key: ${key}`, '(the key is shown only now; store it safely)', `old secret valid until: ${apiKey.previous_secret_expires_at ?? 'no longer valid'}`].join('\n'),
    );
  },
};
