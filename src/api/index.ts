import type Router from '@koa/router';
import type { Services } from '../services.js';
import { apiKeyRoutes } from './api-keys.js';
import { auditRoutes } from './audit.js';
import { authRoutes } from './whoami.js';
import { rateLimitRoutes } from './rate-limits.js';
import { leakedKeyRoutes } from './leaked-keys.js';
import { webhookRoutes } from './webhooks.js';
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
