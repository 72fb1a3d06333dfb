import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Services } from '../services.js';
import { openDatabase } from '../storage/datasource.js';
import type { KeyValueStore } from '../storage/kv.js';
import { openKeyValueStore } from '../storage/open-kv.js';
import { CacheRegistry } from '../storage/cache.js';
import { Invalidation, tags } from '../storage/invalidation.js';
import { entities, migrations } from './entities.js';
import { AuditLog, SYSTEM_ACTOR } from '../audit/service.js';
import { AccountsService } from '../accounts/service.js';
import { InvitationsService } from '../accounts/invitations.js';
import type { OAuthClient } from '../oauth/entities.js';
import { ClientsService } from '../oauth/clients-service.js';
import { createProvider, type Provider } from '../oauth/provider.js';
import { ClientRows } from '../oauth/client-rows.js';
import { activeSigningKey, ensureKeys, readKeys, type StoredKey } from '../oauth/signing-keys.js';
import { grantTag } from '../oauth/grant-tag.js';
import { registerTokenExchangeGrant, type ExchangeDeps } from '../endpoints/token-exchange.js';
import { createRenderer, type Renderer } from '../http/render.js';
import { ApiKeysService } from '../apikeys/service.js';
import { LastUsedTracker } from '../apikeys/last-used.js';
import { ApiKeyRows, type ApiKeyRow } from '../credentials/api-key.js';
import { ClientDirectory } from '../credentials/client-directory.js';
import { ClientKeys } from '../credentials/client-keys.js';
import { outboundFetch } from '../outbound/fetch.js';
import { OwnJwtVerifier } from '../credentials/own-jwt.js';
import { CredentialResolver } from '../credentials/resolver.js';
import type { Resolution } from '../credentials/types.js';
import type { ClientAuthDeps } from '../endpoints/client-auth.js';
import { AuthService } from '../auth/service.js';
import { WebhooksService } from '../webhooks/service.js';
import { SecretBox } from '../webhooks/secret-box.js';
import { Dispatcher } from '../webhooks/dispatcher.js';
import { LeakedKeysService } from '../apikeys/leaked-keys.js';
import { ConsentsService } from '../oauth/consents.js';
import { SessionStore } from '../auth/sessions.js';
import { sessionResolver } from '../dashboard/routes.js';
import { RateLimitService } from '../ratelimit/service.js';
import { RateLimitOverrides } from '../ratelimit/overrides.js';
import { limitManagementApi } from '../api/management-limit.js';
import { authFailureGuard } from '../ratelimit/auth-failures.js';
import type { Role } from '../accounts/entities.js';

export type { Services };

/**
 * The one composition root: every service is built here with what it needs, and every hook is
 * registered here (provider events, invalidations, limits). Nothing is patched after it is built.
 * The server and the CLI both start from this.
 */
export async function buildServices(config: Config, logger: Logger): Promise<Services> {
  if (await ensureKeys(config.keysDir)) logger.info({ dir: config.keysDir }, 'generated signing keys (ES256, RS256)');
  const signingKeys = readKeys(config.keysDir);
  const ds = await openDatabase(config, { entities, migrations });
  const kv = openKeyValueStore(config, logger);
  const c = config.caches;
  const caches = new CacheRegistry();
  const invalidation = new Invalidation(kv, caches, logger);
  await invalidation.start();

  const audit = new AuditLog(ds);
  const accounts = new AccountsService(ds, config, audit);
  const render = createRenderer();
  const clientRows = new ClientRows(ds, caches.create<OAuthClient | null>('clients', { max: 10_000, ttlMs: c.ttlMs, negativeTtlMs: c.negativeTtlMs }), invalidation);
  const provider = createProvider({ config, ds, kv, accounts, keys: signingKeys, logger, render, clientRows });
  const consents = new ConsentsService(ds, provider, audit, invalidation);
  const clients = new ClientsService(
    ds,
    accounts,
    audit,
    async (metadata) => {
      await provider.Client.validate(metadata as never);
    },
    clientRows,
    async (actor, _orgId, clientId) => {
      await consents.endForClient(actor, clientId);
    },
    config.outbound,
  );

  const clientDirectory = new ClientDirectory(clientRows);
  const clientKeys = new ClientKeys(outboundFetch(config.outbound));
  const ownJwts = new OwnJwtVerifier(config.keysDir, config.issuer, config.apiAudience);
  const lastUsed = new LastUsedTracker(ds, logger, config.lastUsedFlushMs);
  const memberships = caches.create<{ role: Role; teamId: string | null } | null>('memberships', { max: 50_000, ttlMs: c.ttlMs, negativeTtlMs: c.negativeTtlMs });
  const credentials = new CredentialResolver({
    issuer: config.issuer,
    apiAudience: config.apiAudience,
    kv,
    provider,
    ownJwts,
    // Cold look-ups may hold at most half the database pool: the rest of the server keeps the other half.
    keys: new ApiKeyRows(ds, config.apiKeys.pepper, caches.create<ApiKeyRow | null>('api-key-rows', { max: 50_000, ttlMs: c.ttlMs, negativeTtlMs: c.negativeTtlMs }), Math.max(1, Math.floor(config.database.poolSize / 2))),
    clients: clientDirectory,
    clientKeys,
    grantOrg: (grantId) => consents.orgOf(grantId),
    membership: (orgId, userId) =>
      memberships.load(`${orgId}:${userId}`, async () => {
        const m = await accounts.membership(orgId, userId);
        return { value: m && { role: m.role, teamId: m.teamId }, tags: [tags.member(orgId, userId)], negative: !m };
      }),
    resolved: caches.create<Resolution>('credentials', { max: c.maxEntries, ttlMs: c.ttlMs }),
    refused: caches.create<Resolution>('refused-credentials', { max: Math.ceil(c.maxEntries / 5), ttlMs: c.negativeTtlMs }),
    onApiKeyUse: (keyId) => lastUsed.touch(keyId),
  });
  const clientAuth: ClientAuthDeps = {
    clients: clientDirectory,
    clientKeys,
    issuer: config.issuer,
    audiences: [config.issuer, `${config.issuer}/token`],
    replay: (iss, jti, exp) => provider.ReplayDetection.unique(iss, jti, exp),
  };
  const exchange: ExchangeDeps = {
    issuer: config.issuer,
    apiAudience: config.apiAudience,
    signingKey: activeSigningKey(signingKeys),
    pepper: config.apiKeys.pepper,
    resolver: credentials,
    ttlSeconds: config.tokens.exchangedTokenTtl,
  };
  registerTokenExchangeGrant(provider, exchange);

  const keyInvalidator = { invalidate: (keyId: string) => invalidation.publish(tags.key(keyId)) };
  const apiKeys = new ApiKeysService(ds, config, audit, accounts, keyInvalidator, lastUsed);
  const rateLimits = new RateLimitService(config, ds, kv, logger, {
    orgs: caches.create('rate-limit-orgs', { max: 10_000, ttlMs: c.ttlMs }),
    keys: caches.create('rate-limit-keys', { max: 50_000, ttlMs: c.ttlMs }),
    publish: (...changed) => invalidation.publish(...changed),
  }, caches.create('rate-limit-spent', { max: 50_000, ttlMs: 86_400_000 }));
  const dashboardSessions = new SessionStore(kv, { idleSeconds: config.accounts.dashboardSessionIdleSeconds, absoluteSeconds: config.accounts.dashboardSessionAbsoluteSeconds });
  const guessing = authFailureGuard(rateLimits, kv);
  const auth = new AuthService({
    resolver: credentials,
    before: [guessing.before],
    onRefused: [guessing.refused],
    // The dashboard's session is one more way to call the JSON API (with its CSRF header).
    fallbacks: [sessionResolver({ config, accounts }, dashboardSessions)],
    onResolved: [limitManagementApi(rateLimits)],
  });
  const webhooks = new WebhooksService(ds, audit, new SecretBox(config.apiKeys.pepper), { ...config.webhooks, ...config.outbound });
  const w = config.webhooks;
  const dispatcher = new Dispatcher(ds, audit, webhooks, logger, {
    retrySchedule: w.retrySchedule,
    pollIntervalMs: w.pollIntervalMs,
    timeoutMs: w.requestTimeoutMs,
    maxResponseBytes: w.maxResponseBytes,
    disableAfterMs: w.disableAfterSeconds * 1000,
    leaseMs: w.leaseMs,
    batchSize: w.batchSize,
    expiryScanIntervalMs: w.expiryScanIntervalMs,
    allowPrivateNetworks: config.outbound.allowPrivateNetworks,
  });
  const leakedKeys = new LeakedKeysService(ds, audit, config.apiKeys.pepper, config.webhooks.scannerPublicKeys, keyInvalidator.invalidate);

  // What a credential's cached verification depends on changes: every instance drops it at once.
  accounts.onMembershipChange(async (orgId, userId) => {
    await invalidation.publish(tags.member(orgId, userId));
    // A member who left loses the organization at once: their grants for it end with their tokens.
    if (!(await accounts.membership(orgId, userId))) await consents.endForMember(SYSTEM_ACTOR, orgId, userId);
  });
  accounts.onOrganizationChange((orgId) => invalidation.publish(tags.org(orgId)));
  watchProvider(provider, { invalidation, consents, audit, logger });

  return {
    config,
    logger,
    ds,
    kv,
    caches,
    invalidation,
    audit,
    accounts,
    clients,
    provider,
    clientRows,
    render,
    apiKeys,
    lastUsed,
    credentials,
    clientDirectory,
    clientKeys,
    clientAuth,
    ownJwts,
    signingKeys,
    exchange,
    auth,
    webhooks,
    dispatcher,
    leakedKeys,
    rateLimits,
    // A minute: a proven secret rotated away is known again at its first failure, whatever this is.
    tokenLimit: { limits: rateLimits, proven: caches.create<true>('token-client-proofs', { max: 10_000, ttlMs: 60_000 }) },
    rateLimitOverrides: new RateLimitOverrides(ds, config, rateLimits.policies, audit),
    invitations: new InvitationsService(ds, accounts, audit, config.accounts.invitationTtlSeconds),
    consents,
    dashboardSessions,
    async close() {
      await lastUsed.close();
      rateLimits.close();
      await dispatcher.stop();
      await kv.close();
      if (ds.isInitialized) await ds.destroy();
    },
  };
}

/**
 * The provider's events: a token or grant it ends is dropped from every instance's caches, and a
 * grant it revokes itself (a rotated-away refresh token came back, RFC 6749 §10.4) ends its consent
 * and tells the organization.
 */
function watchProvider(provider: Provider, d: { invalidation: Invalidation; consents: ConsentsService; audit: AuditLog; logger: Logger }): void {
  const events = provider as unknown as NodeJS.EventEmitter;
  const dropToken = (token: { jti?: string }) => {
    if (token?.jti) void d.invalidation.publish(tags.jti(token.jti));
  };
  for (const event of ['access_token.destroyed', 'client_credentials.destroyed', 'refresh_token.destroyed']) events.on(event, dropToken);
  events.on('grant.destroyed', (grant: { jti?: string }) => {
    if (grant?.jti) void d.invalidation.publish(tags.grant(grantTag(grant.jti)));
  });
  provider.on('grant.revoked', (ctx, grantId) => {
    void (async () => {
      await d.invalidation.publish(tags.grant(grantTag(grantId)));
      const consent = await d.consents.markRevoked(grantId);
      if (ctx?.oidc?.route === 'token' && ctx.oidc.params?.grant_type === 'refresh_token') {
        await d.audit.record(
          { type: 'client', id: ctx.oidc.client?.clientId ?? null, ip: ctx.ip },
          {
            orgId: consent?.orgId ?? null,
            action: 'security.refresh_token_reused',
            targetType: 'grant',
            targetId: grantId,
            details: { client_id: ctx.oidc.client?.clientId, user_id: consent?.userId ?? null },
          },
        );
      }
    })().catch((err) => d.logger.error({ err }, 'could not record a grant revocation'));
  });
}
