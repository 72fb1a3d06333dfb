import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { StoredKey } from '../oauth/signing-keys.js';
import { hashApiKey } from '../credentials/api-key-hash.js';
import { secretFingerprint } from '../credentials/api-key.js';
import type { CredentialResolver } from '../credentials/resolver.js';
import type { ClientRecord } from '../credentials/client-directory.js';
import { OAuthError, oauthErrors, type OAuthReply } from '../http/oauth-error.js';
import { errors as oidcErrors } from 'oidc-provider';
import type { Provider } from '../oauth/provider.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const API_KEY_TOKEN_TYPE = 'urn:flowgate:params:oauth:token-type:api-key';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface ExchangeDeps {
  issuer: string;
  apiAudience: string;
  signingKey: StoredKey;
  pepper: string;
  resolver: CredentialResolver;
  /** config tokens.exchangedTokenTtl: local verifiers see a revocation only when the token expires. */
  ttlSeconds: number;
}

/**
 * RFC 8693 token exchange: an API key (subject_token) buys a short-lived JWT access token (RFC 9068)
 * with the same or narrower scopes, for callers that want to verify locally from the JWKS.
 *
 * Client authentication is optional (RFC 8693 §2.1): the key is itself the credential, and an
 * organization's scripts that hold keys have no OAuth client. When a client does authenticate, it must
 * be registered for this grant and belong to the key's organization, and the token is issued to it
 * (`client_id`); the key always travels in its own claim (`key_id`). The token is the key for five
 * minutes at most: it carries nothing the key does not hold, and it dies with the key (see
 * credentials/resolver.ts) — `kfp` names the secret it was bought with, so a roll without grace ends it.
 */
type ExchangingClient = Pick<ClientRecord, 'clientId' | 'orgId' | 'grantTypes'>;

export async function exchangeApiKey(d: ExchangeDeps, params: URLSearchParams, client: ExchangingClient | null): Promise<OAuthReply> {
  if (client && !client.grantTypes.includes(TOKEN_EXCHANGE)) throw oauthErrors.unauthorizedClient('the client is not registered for the token-exchange grant');
  if (params.get('subject_token_type') !== API_KEY_TOKEN_TYPE) throw oauthErrors.invalidRequest(`subject_token_type must be ${API_KEY_TOKEN_TYPE}`);
  const requestedType = params.get('requested_token_type');
  if (requestedType && requestedType !== ACCESS_TOKEN_TYPE) throw oauthErrors.invalidRequest(`only ${ACCESS_TOKEN_TYPE} can be requested`);
  if ([...params.getAll('audience'), ...params.getAll('resource')].some((a) => a !== d.apiAudience)) {
    throw oauthErrors.invalidTarget(`unknown audience; use ${d.apiAudience}`);
  }
  const subjectToken = params.get('subject_token');
  if (!subjectToken) throw oauthErrors.invalidRequest('missing required parameter: subject_token');
  const key = await d.resolver.resolve(subjectToken);
  // RFC 8693 §2.2.2: an invalid subject token is an invalid_request.
  if (!key.ok || key.kind !== 'api_key') throw oauthErrors.invalidRequest('subject_token is not an active API key');
  if (client && client.orgId !== null && client.orgId !== key.orgId) throw oauthErrors.invalidRequest('subject_token belongs to another organization than the client');
  const requested = (params.get('scope') ?? '').split(' ').filter(Boolean);
  const notHeld = requested.filter((s) => !key.scopes.includes(s));
  if (notHeld.length) throw oauthErrors.invalidScope(`the API key does not hold: ${notHeld.join(' ')}`);
  const scopes = requested.length ? requested : key.scopes;
  const now = Math.floor(Date.now() / 1000);
  const exp = Math.min(now + d.ttlSeconds, key.expiresAt ?? Infinity);
  const { created_at: _c, retired_at: _r, ...jwk } = d.signingKey;
  const signingKey = await importJWK(jwk as JWK, d.signingKey.alg);
  const token = await new SignJWT({
    // RFC 9068 §2.2 requires client_id: the authenticated client, or else the key acting as its own client.
    client_id: client?.clientId ?? key.keyId,
    scope: scopes.join(' '),
    org_id: key.orgId,
    team_id: key.teamId,
    workflow_id: key.workflowId,
    key_id: key.keyId,
    kfp: secretFingerprint(hashApiKey(d.pepper, subjectToken)),
  })
    .setProtectedHeader({ alg: d.signingKey.alg!, kid: d.signingKey.kid, typ: 'at+jwt' })
    .setIssuer(d.issuer)
    .setSubject(key.subject)
    .setAudience(d.apiAudience)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .setJti(randomUUID())
    .sign(signingKey);
  return {
    status: 200,
    body: { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: exp - now, scope: scopes.join(' ') },
  };
}

const EXCHANGE_PARAMS = ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope', 'actor_token', 'actor_token_type'];

/**
 * Registers the grant with the provider: it then appears in discovery's `grant_types_supported`, and
 * a client that authenticates is authenticated by the provider's own client authentication before
 * this handler runs. An exchange without client authentication, which the provider cannot route, is
 * answered by the token endpoint's pre-processing (endpoints/token.ts) with the same function.
 */
export function registerTokenExchangeGrant(provider: Provider, d: ExchangeDeps): void {
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const c = ctx.oidc.client! as unknown as { clientId: string; org_id?: string; grantTypes: string[] };
      const params = new URLSearchParams();
      for (const name of EXCHANGE_PARAMS) {
        const v = (ctx.oidc.params as Record<string, unknown> | undefined)?.[name];
        for (const one of ([] as unknown[]).concat(v ?? [])) params.append(name, String(one));
      }
      try {
        const reply = await exchangeApiKey(d, params, { clientId: c.clientId, orgId: c.org_id ?? null, grantTypes: c.grantTypes });
        ctx.body = reply.body;
      } catch (err) {
        if (err instanceof OAuthError) throw new oidcErrors.CustomOIDCProviderError(err.error, err.description);
        throw err;
      }
    },
    EXCHANGE_PARAMS,
    ['audience', 'resource'],
  );
}
