import { randomBytes } from 'node:crypto';
import type { Services } from './services.js';
import { SYSTEM_ACTOR } from './audit/service.js';
import { ALL_SCOPES } from './oauth/scopes.js';

export interface DevSeed {
  orgId: string;
  email: string;
  password: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/**
 * First start of an empty database: a development organization, an admin user and a demo OAuth
 * client, so that a new user can sign in at once. Runs only when no organization exists, so the
 * credentials are printed exactly once.
 */
export async function seedDevelopmentData(s: Services): Promise<DevSeed | undefined> {
  if ((await s.accounts.listOrganizations()).length > 0) return undefined;
  const org = await s.accounts.createOrganization(SYSTEM_ACTOR, { name: 'Development', plan: 'free' });
  const email = 'admin@flowgate.local';
  const password = randomBytes(12).toString('base64url');
  await s.accounts.createUser(SYSTEM_ACTOR, { email, password, name: 'Admin', orgId: org.id, role: 'owner' });
  const redirectUri = `${s.config.issuer}/demo/callback`;
  const { client, clientSecret } = await s.clients.create(SYSTEM_ACTOR, {
    orgId: org.id,
    name: 'Demo app',
    redirectUris: [redirectUri, 'http://localhost:8080/callback'],
    grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
    authMethod: 'client_secret_basic',
    // Every scope, and the introspection permission: in development the demo client gets the first
    // admin token (client_credentials) and lets `npm run example` introspect, as the README shows.
    scope: ALL_SCOPES.join(' '),
    introspect: true,
  });
  return { orgId: org.id, email, password, clientId: client.client_id, clientSecret: clientSecret!, redirectUri };
}
