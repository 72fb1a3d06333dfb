import { CLI_ACTOR } from '../audit/service.js';
import type { Command } from './commands.js';
import { print, required, UsageError } from './output.js';

/** `rate-limits` command options, spread into OPTIONS. */
export const RATE_LIMIT_OPTIONS = {
  key: { type: 'string' },
  limits: { type: 'string' },
  clear: { type: 'boolean' },
} as const;

export const RATE_LIMIT_USAGE = `  rate-limits show --org ID
  rate-limits set --org ID [--key ID] (--limits '{"write":{"limit":50,"window":"1m"}}' | --clear)`;

function limitsOf(values: Record<string, any>): Record<string, unknown> | null {
  if (!!values.limits === !!values.clear) throw new UsageError('give exactly one of --limits JSON or --clear');
  if (values.clear) return null;
  try {
    const parsed = JSON.parse(String(values.limits));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed;
  } catch {
    throw new UsageError('--limits must be a JSON object such as {"write":{"limit":50,"window":"1m"}}');
  }
}

export const RATE_LIMIT_COMMANDS: Record<string, Command> = {
  'rate-limits show': async (s, { values, json }) => {
    print(json, { ...(await s.rateLimitOverrides.show(required(values, 'org'))) });
  },
  'rate-limits set': async (s, { values, json }) => {
    const orgId = required(values, 'org');
    const limits = limitsOf(values);
    const out = values.key
      ? await s.rateLimitOverrides.setForKey(CLI_ACTOR, orgId, String(values.key), limits)
      : await s.rateLimitOverrides.setForOrganization(CLI_ACTOR, orgId, limits);
    print(json, { id: values.key ?? orgId, ...out });
  },
};
