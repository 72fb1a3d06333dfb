// The only module that imports oidc-provider's runtime.
import Provider, { errors as oidcErrors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { IsNull, type DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { KeyValueStore } from '../storage/kv.js';
import type { AccountsService } from '../accounts/service.js';
import { adapterFactory } from './adapter.js';
import { OAuthConsentEntity } from './entities.js';
import { providerJwks, type StoredKey } from './signing-keys.js';
import { assertCheckedProviderVersion, compareHashedClientSecrets } from './provider-gateway.js';
import { livesTooLong } from './assertion-lifetime.js';
import { OIDC_SCOPES, RESOURCE_SCOPES } from './scopes.js';
import type { Renderer } from '../http/render.js';
import type { ClientRows } from './client-rows.js';
import { registerJwtBearerGrant } from './grants/jwt-bearer.js';
import { defaultClientCredentialsScope } from './grants/client-credentials-scope.js';
import { CLIENT_AUTH_SIGNING_ALGS } from './client-auth-algs.js';
import { grantTag } from './grant-tag.js';
import { outboundFetch } from '../outbound/fetch.js';

export interface ProviderDeps {
  config: Config;
  ds: DataSource;
  kv: KeyValueStore;
  accounts: AccountsService;
  keys: StoredKey[];
  logger: Logger;
  render: Renderer;
  /** Cached client rows shared with introspection. */
  clientRows: ClientRows;
}

export type { Provider, KoaContextWithOIDC };
export { oidcErrors };

export { CLIENT_AUTH_SIGNING_ALGS };

export function createProvider(deps: ProviderDeps): Provider {
  assertCheckedProviderVersion();
  const { config, ds, kv, accounts, keys, logger } = deps;
  const secure = config.issuer.startsWith('https://');
  const consents = () => ds.getRepository(OAuthConsentEntity);

  async function orgForGrant(grantId: string | undefined): Promise<string | undefined> {
    if (!grantId) return undefined;
    const row = await consents().findOneBy({ grantId });
    return row?.orgId;
  }

  const resourceServerInfo = async (_ctx: unknown, resource: string) => {
    if (resource !== config.apiAudience) throw new oidcErrors.InvalidTarget(`unknown resource ${resource}`);
    // RFC 9068: JWT access tokens (typ at+jwt) for the workflow API.
    return {
      scope: RESOURCE_SCOPES.join(' '),
      audience: config.apiAudience,
      accessTokenTTL: config.tokens.accessTokenTtl,
      accessTokenFormat: 'jwt' as const,
      jwt: { sign: { alg: 'ES256' as const } },
    };
  };

  const configuration: Configuration = {
    // Every request the provider makes (a client's jwks_uri) goes through the outbound policy: checked
    // address, pinned socket, no redirects. Its documented hook for outgoing requests.
    fetch: outboundFetch(config.outbound) as Configuration['fetch'],
    adapter: adapterFactory(ds, kv, deps.clientRows, Math.max(config.tokens.accessTokenTtl, config.tokens.clientCredentialsTtl)),
    jwks: providerJwks(keys) as Configuration['jwks'],
    cookies: {
      keys: config.cookieSecrets,
      long: { httpOnly: true, sameSite: 'lax', secure, signed: true },
      short: { httpOnly: true, sameSite: 'lax', secure, signed: true },
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', ...RESOURCE_SCOPES],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
    enabledJWA: {
      // Asymmetric only: symmetric client assertions would need the plaintext secret we never store.
      clientAuthSigningAlgValues: CLIENT_AUTH_SIGNING_ALGS as any,
      idTokenSigningAlgValues: ['ES256', 'RS256'],
      userinfoSigningAlgValues: ['ES256', 'RS256'],
      // RFC 9701 answers from Flowgate's introspection endpoint (RS256 is the default, §6).
      introspectionSigningAlgValues: ['RS256', 'ES256'],
    },
    // RFC 7523 §3: the same lifetime cap for client assertions at every endpoint (ours: endpoints/client-auth.ts).
    assertJwtClientAuthClaimsAndHeader: async (_ctx, claims) => {
      if (livesTooLong(claims)) throw new oidcErrors.InvalidClientAuth('client_assertion must expire within an hour of its issue');
    },
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    extraClientMetadata: {
      properties: ['org_id', 'flowgate_introspect'],
    },
    pkce: {
      // RFC 7636 / OAuth 2.1: public clients must use PKCE (S256; oidc-provider 9 has no "plain").
      required: (_ctx, client) => client.clientAuthMethod === 'none',
    },
    findAccount: async (_ctx, sub) => {
      const user = await accounts.getUser(sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        // OIDC Core §5.1: true only once the address owner proved control of it (a trusted path set
        // email_verified_at); relying parties link accounts by verified addresses.
        claims: async () => ({ sub: user.id, email: user.email, email_verified: !!user.emailVerifiedAt, ...(user.name && { name: user.name }) }),
      };
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    loadExistingGrant: async (ctx) => {
      // Consent is remembered per user, client and scope set: first this browser session's grant,
      // then the latest unrevoked consent the user gave this client (from any session).
      const fromResult = ctx.oidc.result?.consent?.grantId;
      const fromSession = ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId);
      const id = fromResult || fromSession;
      if (id) return ctx.oidc.provider.Grant.find(id);
      const accountId = ctx.oidc.session?.accountId;
      if (!accountId) return undefined;
      const row = await consents().findOne({
        where: { userId: accountId, clientId: ctx.oidc.client!.clientId, revokedAt: IsNull() },
        order: { createdAt: 'DESC' },
      });
      return row ? ctx.oidc.provider.Grant.find(row.grantId) : undefined;
    },
    features: {
      devInteractions: { enabled: false },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: only the client a token was issued to may revoke it.
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId !== client.clientId) throw new oidcErrors.InvalidRequest('client is not authorized to revoke the presented token');
          return true;
        },
      },
      userinfo: { enabled: true },
      // Introspection is served by Flowgate (endpoints/introspection.ts); this only announces the
      // RFC 9701 signed answers in discovery and accepts the client metadata that asks for them.
      jwtIntrospection: { enabled: true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = deps.render('logout', { title: 'Sign out', form });
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = deps.render('message', { title: 'Signed out', message: 'You are signed out.' });
        },
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client) => flowgateMetadata(client).flowgate_introspect === true,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: resourceServerInfo,
      },
    },
    extraTokenClaims: async (ctx, token) => {
      // Access tokens carry the organization they act for: the client's own for client
      // credentials, the one the user chose at consent otherwise.
      if (token.kind === 'ClientCredentials') {
        const orgId = ctx.oidc.client ? flowgateMetadata(ctx.oidc.client).org_id : undefined;
        return orgId ? { org_id: orgId } : undefined;
      }
      const grantId = (token as { grantId?: string }).grantId;
      const orgId = await orgForGrant(grantId);
      // `gid` ties a JWT access token to its grant without revealing the grant id, so that revoking
      // the grant (consent revoked, refresh token reused) can put it on the deny list.
      return { ...(orgId && { org_id: orgId }), ...(grantId && { gid: grantTag(grantId) }) };
    },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: config.tokens.accessTokenTtl,
      AuthorizationCode: config.tokens.authorizationCodeTtl,
      ClientCredentials: config.tokens.clientCredentialsTtl,
      IdToken: config.tokens.idTokenTtl,
      Interaction: config.tokens.interactionTtl,
      Session: config.tokens.sessionTtl,
      Grant: config.tokens.grantTtl,
      RefreshToken: (_ctx, token, client) => {
        if (token.isSenderConstrained?.() || client.clientAuthMethod !== 'none') return config.tokens.refreshTokenTtl;
        return Math.min(config.tokens.refreshTokenTtl, 86400 * 7);
      },
    },
    renderError: async (ctx, out, _error) => {
      ctx.type = 'html';
      ctx.body = deps.render('error', { title: 'Something went wrong', error: out.error, description: out.error_description });
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;

  compareHashedClientSecrets(provider);

  registerJwtBearerGrant(provider, resourceServerInfo);
  defaultClientCredentialsScope(provider);

  provider.on('server_error', (_ctx, err) => logger.error({ err }, 'oidc-provider server_error'));
  return provider;
}

/**
 * Flowgate's own client metadata (extraClientMetadata). The provider keeps unrecognised keys under
 * their own names on the client; `metadata()` would rebuild the whole snake_case document per call.
 */
function flowgateMetadata(client: object): { org_id?: string; flowgate_introspect?: boolean } {
  return client as { org_id?: string; flowgate_introspect?: boolean };
}

export const OIDC_SCOPE_NAMES = Object.keys(OIDC_SCOPES);
