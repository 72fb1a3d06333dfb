import { decodeJwt } from 'jose';
import type Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider';
// @ts-expect-error oidc-provider ships no types for its internal modules
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Assertions may live at most an hour (the issue's bound; RFC 7523 §3 leaves it to the server). */
export const MAX_ASSERTION_LIFETIME = 3600;

/**
 * RFC 7523 §2.1 for server-to-server callers: the client signs an assertion with the private key whose
 * public half it registered (`iss` = `sub` = client id, `aud` = issuer or token endpoint, `exp`, single-
 * use `jti`).
 *
 * The assertion is verified by oidc-provider's own private_key_jwt machinery: when the request carries
 * no separate client authentication, the assertion is presented as the client assertion (RFC 7523 §2.2
 * and §2.1 use the same JWT profile), so signature, audience, expiry, algorithm allow-list and `jti`
 * replay detection are the provider's, not ours.
 */
export function registerJwtBearerGrant(provider: Provider): void {
  provider.registerGrantType(
    JWT_BEARER,
    async (ctx: any) => {
      if (ctx.oidc.client.clientAuthMethod !== 'private_key_jwt') {
        throw new oidcErrors.InvalidGrant('the jwt-bearer grant needs a client registered for private_key_jwt');
      }
      // The built-in client_credentials handler issues exactly what this grant should: a token for the
      // client itself, limited to its allowed scopes and the requested resource.
      const issue = instance(ctx.oidc.provider).grantTypeHandlers.get('client_credentials');
      return issue(ctx);
    },
    ['scope', 'resource'],
    ['resource'],
  );
}

/**
 * For the jwt-bearer grant: checks the assertion's shape and lifetime, then moves `assertion` into
 * `client_assertion` so that the provider authenticates it. Returns an RFC 6749 error pair, or
 * undefined when the parameters were rewritten.
 */
export function rewriteJwtBearer(params: URLSearchParams): [string, string] | undefined {
  const assertions = params.getAll('assertion');
  const assertion = assertions.length === 1 ? assertions[0] : '';
  if (!assertion) return ['invalid_request', 'missing required parameter: assertion'];
  let claims;
  try {
    claims = decodeJwt(assertion);
  } catch {
    return ['invalid_grant', 'assertion is not a JWT'];
  }
  if (!claims.iss || claims.iss !== claims.sub) return ['invalid_grant', 'assertion iss and sub must both be the client_id'];
  if (typeof claims.exp !== 'number') return ['invalid_grant', 'assertion must carry exp'];
  if (claims.exp - Math.floor(Date.now() / 1000) > MAX_ASSERTION_LIFETIME) {
    return ['invalid_grant', `assertion exp must be at most ${MAX_ASSERTION_LIFETIME} seconds ahead`];
  }
  if (!claims.jti) return ['invalid_grant', 'assertion must carry jti'];
  const hasOtherAuth = params.has('client_assertion') || params.has('client_secret');
  if (hasOtherAuth) return ['invalid_request', 'send the assertion once, as assertion, without other client authentication'];
  params.set('client_assertion', assertion);
  params.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
  params.set('client_id', claims.iss);
  params.delete('assertion');
  return undefined;
}
