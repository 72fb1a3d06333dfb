import type Router from '@koa/router';
import type { Services } from '../compose/services.js';
import { apiKeyRoutes } from '../apikeys/routes.js';
import { auditRoutes } from '../audit/routes.js';
import { authRoutes } from '../auth/routes.js';
import { rateLimitRoutes } from '../ratelimit/routes.js';
import { leakedKeyRoutes } from '../webhooks/leaked-keys-routes.js';
import { webhookRoutes } from '../webhooks/routes.js';
import { clientRoutes } from './clients.js';
import { docsRoutes } from './docs.js';
import { invitationRoutes } from './invitations.js';
import { memberRoutes } from './members.js';
import { organizationRoutes } from './organization.js';
import { teamRoutes } from './teams.js';

/**
 * Every router of the JSON API under /api/v1, in mounting order. The OpenAPI document is built from
 * exactly these (each route's guard carries its spec), so a route added here without a guard is
 * missing from the document, and the completeness test says so.
 */
export function jsonApiRouters(s: Services): Router[] {
  return [
    // Before the API-key router: this path is authenticated by a scanner signature, not a credential.
    leakedKeyRoutes({ leaked: s.leakedKeys, bodyLimit: s.config.bodyLimit }),
    authRoutes(s.auth),
    apiKeyRoutes({ apiKeys: s.apiKeys, auth: s.auth, bodyLimit: s.config.bodyLimit }),
    auditRoutes({ audit: s.audit, auth: s.auth }),
    rateLimitRoutes({ overrides: s.rateLimitOverrides, apiKeys: s.apiKeys, auth: s.auth, bodyLimit: s.config.bodyLimit }),
    webhookRoutes({ webhooks: s.webhooks, auth: s.auth, bodyLimit: s.config.bodyLimit }),
    clientRoutes(s),
    memberRoutes(s),
    invitationRoutes(s),
    teamRoutes(s),
    organizationRoutes(s),
  ];
}

/** The JSON API's routers followed by the router serving /openapi.json and /docs/api. */
export function apiRouters(s: Services): Router[] {
  const routers = jsonApiRouters(s);
  return [...routers, docsRoutes(s.config, () => routers)];
}
