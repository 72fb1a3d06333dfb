import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Middleware } from 'koa';
import type { Services } from '../services.js';
import type { ApiKeyVerifier } from '../apikeys/verify.js';
import { readKeys, publicJwks, activeSigningKey } from '../oauth/signing-keys.js';
import { tokenEndpointPreprocessor } from '../oauth/token-endpoint.js';
import { AnswerCache, CREDENTIALS_REVOKED } from './answer-cache.js';
import { ClientDirectory } from './client-directory.js';
import { ClientKeys } from './client-keys.js';
import { Introspector } from './introspector.js';
import { introspectionEndpoint, type AnswerDecorator } from './route.js';
import type { CallerAuthDeps } from './client-auth.js';
import { jwtRevocationEndpoint } from './jwt-revocation.js';
import { apiKeyResolver } from './resolvers/api-key.js';
import { jwtAccessTokenResolver } from './resolvers/jwt-access-token.js';
import { opaqueResolver } from './resolvers/opaque.js';
import { serviceJwtResolver } from './resolvers/service-jwt.js';
import { jwtDenied } from '../oauth/deny-list.js';

export const INTROSPECTION_PATH = '/token/introspection';
export const REVOCATION_PATH = '/token/revocation';
export const TOKEN_PATH = '/token';

export interface IntrospectionParts {
  introspector: Introspector;
  clients: ClientDirectory;
  /** Authenticates resource servers (for neighbouring endpoints that serve them). */
  callerAuth: CallerAuthDeps;
  /** The introspection endpoint on the bare Node request (true when it answered). */
  endpoint: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Middleware to mount before the provider, in order. */
  middleware: Middleware[];
}

/**
 * Builds the one introspection endpoint and its neighbours on the token endpoint (JWT revocation,
 * jwt-bearer and token-exchange preprocessing). Opaque-token revocations done by the provider
 * flush every instance's answer cache.
 */
export function buildIntrospection(
  s: Services,
  apiKeyVerifier?: ApiKeyVerifier,
  decorate?: AnswerDecorator,
  /** The token endpoint's per-client rate limit (issue 5); see tokenEndpointPreprocessor. */
  tokenLimit?: Parameters<typeof tokenEndpointPreprocessor>[2],
): IntrospectionParts {
  const { config, kv, provider } = s;
  const keys = readKeys(config.keysDir);
  const jwks = publicJwks(keys);
  const clients = new ClientDirectory(s.clientRows);
  const clientKeys = new ClientKeys();
  const cache = new AnswerCache(kv, 60_000);
  // API keys: the verifier hears of every revocation, roll or scope change (here at once, elsewhere
  // through pub/sub); cached answers go with it.
  apiKeyVerifier?.onDrop(() => cache.flush());
  const auth = { clients, clientKeys, kv, issuer: config.issuer, endpointUrl: config.issuer + INTROSPECTION_PATH };
  const prefix = config.apiKeys.prefix;
  const keyLength = prefix.length + 38;
  const resolveApiKey = apiKeyVerifier ? apiKeyResolver(apiKeyVerifier, config.issuer) : undefined;
  const introspector = new Introspector({
    issuer: config.issuer,
    cache,
    // Dispatch by the deployment's prefix and exact length: opaque provider tokens never collide.
    looksLikeApiKey: (t) => t.length === keyLength && t.startsWith(prefix),
    apiKey: resolveApiKey,
    jwtAccessToken: jwtAccessTokenResolver(jwks, kv, config.issuer),
    serviceJwt: serviceJwtResolver(clients, clientKeys, kv, config.apiAudience),
    opaque: opaqueResolver(provider, kv, config.issuer),
    onCachedApiKey: apiKeyVerifier ? (id) => apiKeyVerifier.recordUse(id) : undefined,
  });

  // Flush here first (a revocation must be visible on this instance at once), then everywhere else.
  const flush = () => {
    cache.flush();
    void kv.publish(CREDENTIALS_REVOKED, 'oidc').catch(() => {});
  };
  const events = provider as unknown as NodeJS.EventEmitter;
  for (const event of ['access_token.destroyed', 'client_credentials.destroyed', 'refresh_token.destroyed'] as const) events.on(event, flush);
  // A revoked grant takes its tokens with it: the adapter deletes the opaque ones and denies the JWTs
  // (src/oauth/adapter.ts) before the provider answers; cached answers must go at the same moment.
  events.on('grant.revoked', flush);
  events.on('grant.destroyed', flush);

  const exchange = {
    issuer: config.issuer,
    apiAudience: config.apiAudience,
    signingKey: activeSigningKey(keys),
    // The same reading of a key as introspection's: what the exchanged token may carry.
    verifyApiKey: async (raw: string) => {
      const a = resolveApiKey ? await resolveApiKey(raw) : null;
      if (!a) return null;
      return {
        keyId: a.key_id!,
        orgId: a.org_id!,
        teamId: a.team_id ?? null,
        workflowId: a.workflow_id ?? null,
        scopes: (a.scope ?? '').split(' ').filter(Boolean),
        sub: a.sub!,
        expiresAt: a.exp,
      };
    },
  };

  // Flowgate's own management API accepts JWT access tokens too: it consults the same deny list.
  s.auth.jwtRevoked = (payload) => jwtDenied(kv, payload);

  return {
    introspector,
    clients,
    callerAuth: auth,
    endpoint: introspectionEndpoint({ path: INTROSPECTION_PATH, auth, introspector, decorate, logger: s.logger, trustProxy: config.trustProxy }),
    middleware: [
      jwtRevocationEndpoint(REVOCATION_PATH, auth, jwks, kv, flush),
      tokenEndpointPreprocessor(TOKEN_PATH, exchange, tokenLimit),
    ],
  };
}
