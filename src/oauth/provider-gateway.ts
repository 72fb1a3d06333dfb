import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type Provider from 'oidc-provider';
import { secretMatches } from './secrets.js';

/**
 * The one place Flowgate reaches past oidc-provider's documented configuration. Everything here was
 * checked against this exact version (package.json pins it); a different version refuses to start
 * until this file is checked again.
 */
export const CHECKED_PROVIDER_VERSION = '9.13.3';

export function assertCheckedProviderVersion(): void {
  const require = createRequire(import.meta.url);
  const pkg = JSON.parse(readFileSync(require.resolve('oidc-provider/package.json'), 'utf8')) as { version: string };
  if (pkg.version !== CHECKED_PROVIDER_VERSION) {
    throw new Error(`oidc-provider ${pkg.version} is installed; src/oauth/provider-gateway.ts was checked against ${CHECKED_PROVIDER_VERSION}`);
  }
}

/**
 * Client secrets are stored as SHA-256 hashes (oauth_clients.secret_hash) and handed to the provider
 * as such. oidc-provider has no configuration hook for the comparison (lib/models/client.js
 * compareClientSecret compares the stored value with the presented one), so the comparison is
 * replaced here: hash what was presented, compare in constant time.
 */
export function compareHashedClientSecrets(provider: Provider): void {
  (provider.Client.prototype as unknown as { compareClientSecret: (actual: string) => boolean }).compareClientSecret = function compareClientSecret(
    this: { clientSecret?: string },
    actual: string,
  ) {
    return typeof actual === 'string' && !!this.clientSecret && secretMatches(actual, this.clientSecret);
  };
}
