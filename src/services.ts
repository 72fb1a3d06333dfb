import { RateLimitOverrides } from './ratelimit/overrides.js';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { openDatabase } from './storage/datasource.js';
import type { KeyValueStore } from './storage/kv.js';
import { openKeyValueStore } from './storage/open-kv.js';
import { entities, migrations } from './entities.js';
import { AuditLog } from './audit/service.js';
import { AccountsService } from './accounts/service.js';
import { ClientsService } from './oauth/clients-service.js';
import { createProvider, type Provider } from './oauth/provider.js';
import { ClientRows } from './oauth/client-rows.js';
import { ensureKeys, readKeys } from './oauth/signing-keys.js';
import { createRenderer, type Renderer } from './http/render.js';
import { buildApiKeys } from './apikeys/index.js';
import type { ApiKeysService } from './apikeys/service.js';
import type { ApiKeyVerifier } from './apikeys/verify.js';
import type { AuthService } from './auth/service.js';
import { WebhooksService } from './webhooks/service.js';
import { SecretBox } from './webhooks/secret-box.js';
import { Dispatcher } from './webhooks/dispatcher.js';
import { InvitationsService } from './accounts/invitations.js';
import { ConsentsService } from './dashboard/consents.js';
import { SessionStore } from './dashboard/sessions.js';
import { LeakedKeysService } from './webhooks/leaked-keys.js';
import { RateLimitService } from './ratelimit/service.js';
import { limitManagementApi } from './ratelimit/http.js';

/** Everything the HTTP app and the CLI share: one service layer, built once per process. */
export interface Services {
  config: Config;
  logger: Logger;
  ds: DataSource;
  kv: KeyValueStore;
  audit: AuditLog;
  accounts: AccountsService;
  clients: ClientsService;
  provider: Provider;
  /** oauth_clients rows, cached and invalidated across instances (token endpoint and introspection). */
  clientRows: ClientRows;
  render: Renderer;
  apiKeys: ApiKeysService;
  /** Hot-path API key verification (cache + pub/sub invalidation). */
  apiKeyVerifier: ApiKeyVerifier;
  /** Principal resolution for Flowgate's own API. */
  auth: AuthService;
  webhooks: WebhooksService;
  /** Delivers events to webhook endpoints; started by the server, not by the CLI. */
  dispatcher: Dispatcher;
  /** Leaked-key reports from secret scanners. */
  leakedKeys: LeakedKeysService;
  /** Rate limits for every caller and category (issue 5). */
  rateLimits: RateLimitService;
  /** Organization and per-key rate-limit overrides (API, CLI). */
  rateLimitOverrides: RateLimitOverrides;
  /** Dashboard (issue 7): invitation links, the user's authorized apps, dashboard sessions. */
  invitations: InvitationsService;
  consents: ConsentsService;
  dashboardSessions: SessionStore;
  close(): Promise<void>;
}

export async function buildServices(config: Config, logger: Logger): Promise<Services> {
  if (await ensureKeys(config.keysDir)) logger.info({ dir: config.keysDir }, 'generated signing keys (ES256, RS256)');
  const ds = await openDatabase(config, { entities, migrations });
  const kv = openKeyValueStore(config);
  const audit = new AuditLog(ds);
  const accounts = new AccountsService(ds, config, audit);
  const render = createRenderer();
  const clientRows = new ClientRows(ds, kv);
  const provider = createProvider({ config, ds, kv, accounts, keys: readKeys(config.keysDir), logger, render, audit, clientRows });
  const clients = new ClientsService(ds, accounts, audit, async (metadata) => {
    await provider.Client.validate(metadata as any);
  }, clientRows);
  const keys = await buildApiKeys({ config, ds, kv, audit, accounts, provider, logger });
  const rateLimits = new RateLimitService(config, ds, kv, logger);
  limitManagementApi(keys.auth, rateLimits);
  const webhooks = new WebhooksService(ds, audit, new SecretBox(config.apiKeys.pepper), config.webhooks);
  const dispatcher = new Dispatcher(ds, audit, webhooks, logger, config.webhooks);
  const leakedKeys = new LeakedKeysService(ds, audit, config.apiKeys.pepper, config.webhooks.scannerPublicKeys, (id) => keys.verifier.invalidate(id));
  return {
    config,
    logger,
    ds,
    kv,
    audit,
    accounts,
    clients,
    provider,
    clientRows,
    webhooks,
    leakedKeys,
    dispatcher,
    render,
    invitations: new InvitationsService(ds, accounts, audit),
    consents: new ConsentsService(ds, provider, audit, kv),
    dashboardSessions: new SessionStore(kv),
    apiKeys: keys.apiKeys,
    apiKeyVerifier: keys.verifier,
    auth: keys.auth,
    rateLimits,
    rateLimitOverrides: new RateLimitOverrides(ds, config, rateLimits.policies, audit),
    async close() {
      await keys.close();
      rateLimits.close();
      await dispatcher.stop();
      await kv.close();
      if (ds.isInitialized) await ds.destroy();
    },
  };
}
