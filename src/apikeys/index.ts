import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { KeyValueStore } from '../storage/kv.js';
import type { AuditLog } from '../audit/service.js';
import type { AccountsService } from '../accounts/service.js';
import type { Provider } from '../oauth/provider.js';
import { AuthService } from '../auth/service.js';
import { ApiKeysService } from './service.js';
import { ApiKeyVerifier } from './verify.js';
import { LastUsedTracker } from './last-used.js';

export interface ApiKeyParts {
  apiKeys: ApiKeysService;
  verifier: ApiKeyVerifier;
  lastUsed: LastUsedTracker;
  auth: AuthService;
  /** Flushes pending last_used_at times and stops the timer. */
  close(): Promise<void>;
}

/** Builds the API-key services and principal resolution (composition for services.ts). */
export async function buildApiKeys(d: {
  config: Config;
  ds: DataSource;
  kv: KeyValueStore;
  audit: AuditLog;
  accounts: AccountsService;
  provider: Provider;
  logger: Logger;
}): Promise<ApiKeyParts> {
  const lastUsed = new LastUsedTracker(d.ds, d.logger);
  const verifier = new ApiKeyVerifier(d.ds, d.kv, d.config.apiKeys.pepper, lastUsed, d.logger);
  await verifier.start();
  const apiKeys = new ApiKeysService(d.ds, d.config, d.audit, d.accounts, verifier, lastUsed);
  d.accounts.onMembershipChange((orgId, userId) => apiKeys.creatorChanged(orgId, userId));
  d.accounts.onOrganizationChange((orgId) => apiKeys.organizationChanged(orgId));
  const auth = new AuthService({ config: d.config, accounts: d.accounts, provider: d.provider, apiKeys: verifier });
  return { apiKeys, verifier, lastUsed, auth, close: () => lastUsed.close() };
}
