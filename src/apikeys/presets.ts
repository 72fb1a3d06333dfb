import type { Role } from '../accounts/entities.js';
import { ADMIN_SCOPES, MANAGEMENT_SCOPES, PLATFORM_SCOPES } from '../oauth/scopes.js';

/** Every scope an API key may carry: the workflow API's and Flowgate's management ones. */
export const API_KEY_SCOPES = [...Object.keys(PLATFORM_SCOPES), ...Object.keys(MANAGEMENT_SCOPES)];

/**
 * The three permission levels users know from other platforms, mapped onto scopes:
 * - read_only: view workflows, runs and connections; modify nothing.
 * - read_write: also create, update and run workflows and manage connections ("triggers and
 *   integrations"). The workflow API's `connections:write` covers DELETE /connections/:id as well, so this
 *   preset can remove a connection; it cannot manage keys or webhooks.
 * - full_access: everything, including managing API keys and webhooks ("Manage API keys and settings"),
 *   and for owners and admins the organization's clients, members, teams and settings.
 */
export const PRESETS = {
  read_only: ['workflows:read', 'runs:read', 'connections:read'],
  read_write: ['workflows:read', 'workflows:write', 'workflows:execute', 'runs:read', 'connections:read', 'connections:write'],
  full_access: API_KEY_SCOPES,
} as const satisfies Record<string, readonly string[]>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** Scopes in a stable order (the order of API_KEY_SCOPES), without duplicates. */
export function normalizeScopes(scopes: Iterable<string>): string[] {
  const set = new Set(scopes);
  return API_KEY_SCOPES.filter((s) => set.has(s));
}

/** The scopes a user of this role can hold: members never hold ADMIN_SCOPES. */
export function scopesForRole(role: Role | undefined): string[] {
  return role === 'member' ? API_KEY_SCOPES.filter((s) => !ADMIN_SCOPES.includes(s)) : [...API_KEY_SCOPES];
}
