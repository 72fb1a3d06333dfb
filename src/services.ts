import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { KeyValueStore } from './storage/kv.js';
import type { CacheRegistry } from './storage/cache.js';
import type { TokenLimitDeps } from './endpoints/token-limit.js';
import type { Invalidation } from './storage/invalidation.js';
import type { AuditLog } from './audit/service.js';
import type { AccountsService } from './accounts/service.js';
import type { InvitationsService } from './accounts/invitations.js';
import type { ClientsService } from './oauth/clients-service.js';
import type { Provider } from './oauth/provider.js';
import type { ClientRows } from './oauth/client-rows.js';
import type { StoredKey } from './oauth/signing-keys.js';
import type { ConsentsService } from './oauth/consents.js';
import type { Renderer } from './http/render.js';
import type { ApiKeysService } from './apikeys/service.js';
import type { LastUsedTracker } from './apikeys/last-used.js';
import type { LeakedKeysService } from './apikeys/leaked-keys.js';
import type { ClientDirectory } from './credentials/client-directory.js';
import type { ClientKeys } from './credentials/client-keys.js';
import type { OwnJwtVerifier } from './credentials/own-jwt.js';
import type { CredentialResolver } from './credentials/resolver.js';
import type { ClientAuthDeps } from './endpoints/client-auth.js';
import type { ExchangeDeps } from './endpoints/token-exchange.js';
import type { AuthService } from './auth/service.js';
import type { SessionStore } from './auth/sessions.js';
import type { WebhooksService } from './webhooks/service.js';
import type { Dispatcher } from './webhooks/dispatcher.js';
import type { RateLimitService } from './ratelimit/service.js';
import type { RateLimitOverrides } from './ratelimit/overrides.js';

/**
 * Everything the HTTP app and the CLI share: one service layer, built once per process by the
 * composition root (compose/services.ts). Routes and pages receive it; nothing below them imports it.
 */
export interface Services {
  config: Config;
  logger: Logger;
  ds: DataSource;
  kv: KeyValueStore;
  /** Every in-process cache, and the one channel that invalidates them on every instance. */
  caches: CacheRegistry;
  invalidation: Invalidation;
  audit: AuditLog;
  accounts: AccountsService;
  clients: ClientsService;
  provider: Provider;
  clientRows: ClientRows;
  render: Renderer;
  apiKeys: ApiKeysService;
  lastUsed: LastUsedTracker;
  /** The one reader of credentials (introspection, Flowgate's API, token exchange). */
  credentials: CredentialResolver;
  /** What the endpoints served in front of the provider share. */
  clientDirectory: ClientDirectory;
  clientKeys: ClientKeys;
  clientAuth: ClientAuthDeps;
  ownJwts: OwnJwtVerifier;
  signingKeys: StoredKey[];
  exchange: ExchangeDeps;
  /** Principal resolution for Flowgate's own API. */
  auth: AuthService;
  webhooks: WebhooksService;
  /** Delivers events to webhook endpoints; started by the server, not by the CLI. */
  dispatcher: Dispatcher;
  leakedKeys: LeakedKeysService;
  rateLimits: RateLimitService;
  /** The token endpoint's limits and what they remember of proven client secrets. */
  tokenLimit: TokenLimitDeps;
  rateLimitOverrides: RateLimitOverrides;
  invitations: InvitationsService;
  consents: ConsentsService;
  dashboardSessions: SessionStore;
  close(): Promise<void>;
}
