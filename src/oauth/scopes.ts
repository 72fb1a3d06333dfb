/** Scopes Flowgate knows, with the plain words the consent page shows. */
export const PLATFORM_SCOPES: Record<string, string> = {
  'workflows:read': 'Read your workflow definitions',
  'workflows:write': 'Create and modify your workflows',
  'workflows:execute': 'Run your workflows',
  'runs:read': 'Read your workflow run history',
  'connections:read': 'View your connections',
  'connections:write': 'Create and delete your connections',
};

export const OIDC_SCOPES: Record<string, string> = {
  openid: 'Know who you are',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay connected when you are not using it',
};

/** Management scopes exist for API keys and tokens that manage Flowgate itself. */
export const MANAGEMENT_SCOPES: Record<string, string> = {
  'api_keys:read': 'List API keys',
  'api_keys:write': 'Create, roll and delete API keys',
  'webhooks:manage': 'Manage webhooks',
  'audit:read': "Read your organization's audit log",
  'clients:manage': "Register, change and delete your organization's OAuth clients",
  'members:manage': "Manage your organization's members, invitations and teams",
  'settings:manage': "Change your organization's settings",
};

/**
 * Scopes only owners and admins hold: a member's credentials never carry them (a member's
 * `full_access` key is full access minus these), and a credential acting for a member is refused
 * even if it somehow has them.
 */
export const ADMIN_SCOPES: readonly string[] = ['clients:manage', 'members:manage', 'settings:manage'];

export const ALL_SCOPES = [...Object.keys(OIDC_SCOPES), ...Object.keys(PLATFORM_SCOPES), ...Object.keys(MANAGEMENT_SCOPES)];
export const RESOURCE_SCOPES = [...Object.keys(PLATFORM_SCOPES), ...Object.keys(MANAGEMENT_SCOPES)];

export function describeScope(scope: string): string {
  return OIDC_SCOPES[scope] ?? PLATFORM_SCOPES[scope] ?? MANAGEMENT_SCOPES[scope] ?? scope;
}
