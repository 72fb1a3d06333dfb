import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { errorReply, oauthErrors, sendKoa } from '../../http/oauth-error.js';
import type Provider from 'oidc-provider';
import { errors as oidcErrors, type ResourceServer, type ResourceServerInstance, type TokenEndpointGrantContext } from 'oidc-provider';
import { CLIENT_AUTH_SIGNING_ALGS } from '../client-auth-algs.js';
import { RESOURCE_SCOPES } from '../scopes.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Assertions may live at most an hour (RFC 7523 §3 item 4 leaves the bound to the server). */
export const MAX_ASSERTION_LIFETIME = 3600;
/** Seconds of clock difference tolerated on exp, nbf and iat. */
const CLOCK_TOLERANCE = 15;

const JTI_REQUIRED =
  'assertion must carry jti: Flowgate accepts each assertion once and remembers its jti until it expires (replay protection, RFC 7523 §3 item 7)';

/** RFC 7523 §3.1: the assertion is not valid. (The provider's InvalidGrant keeps its argument out of the response.) */
const invalidGrant = (description: string) => new oidcErrors.CustomOIDCProviderError('invalid_grant', description);

/** The resource servers Flowgate serves, as the provider's resourceIndicators configuration describes them. */
export type ResourceServerInfo = (ctx: TokenEndpointGrantContext, resource: string) => Promise<ResourceServer>;

/**
 * RFC 7523 §2.1, for server-to-server callers: the client signs an assertion with a private key whose
 * public half it registered (`iss` = `sub` = client id, `aud` = the issuer or the token endpoint,
 * `exp` at most an hour ahead, a `jti` used once) and trades it for an access token for itself.
 *
 * Client authentication may come alongside the assertion (RFC 7521 §4.1: client_secret_basic or
 * _post, or a private_key_jwt client_assertion, as oauth4webapi, openid-client and Authlib send it):
 * the provider authenticates the client (failures are invalid_client), and the assertion is checked
 * here (failures are invalid_grant, RFC 7523 §3.1). When nothing else authenticates the client the
 * assertion does both: the token endpoint's pre-processor presents it to the provider as the client
 * assertion too (RFC 7523 §2.2 uses the same JWT profile), and any refusal of it is invalid_grant.
 *
 * Either way the `jti` goes through the provider's ReplayDetection, the one store of used
 * assertion ids for every endpoint that accepts private_key_jwt.
 */
export function registerJwtBearerGrant(provider: Provider, resourceServerInfo: ResourceServerInfo): void {
  provider.registerGrantType<{ assertion?: string; client_assertion?: string }>(
    JWT_BEARER,
    async (ctx) => {
      const { client, params } = ctx.oidc;
      // DPoP (RFC 9449) binding is not offered on this grant; refuse rather than issue an unbound token.
      if (ctx.get('dpop')) throw new oidcErrors.InvalidRequest('DPoP is not supported with the jwt-bearer grant');
      const assertion = params.assertion;
      if (typeof assertion !== 'string' || !assertion) throw new oidcErrors.InvalidRequest('missing required parameter: assertion');
      // The same JWT as the client assertion: the provider has already verified it (and used its jti).
      if (assertion !== params.client_assertion) await verifyAssertion(ctx, assertion);
      await issueClientToken(ctx, resourceServerInfo);
    },
    ['assertion', 'scope', 'resource'],
    ['resource'],
  );

  // When the assertion was also the client's authentication, the provider refused it as client
  // authentication (invalid_client); RFC 7523 §3.1 answers an invalid assertion with invalid_grant.
  provider.on('grant.error', (ctx, err) => {
    const params = ctx.oidc?.params as { grant_type?: unknown; assertion?: unknown; client_assertion?: unknown } | undefined;
    if (params?.grant_type !== JWT_BEARER || !params.assertion || params.assertion !== params.client_assertion) return;
    if ((err as { error?: string }).error !== 'invalid_client') return;
    const detail = (err as { error_detail?: string }).error_detail;
    ctx.remove('WWW-Authenticate');
    sendKoa(ctx, errorReply(oauthErrors.invalidGrant(`the assertion was refused${detail ? `: ${detail}` : ''}`)));
  });
}

/**
 * For the jwt-bearer grant, before the provider parses the request: checks the assertion's shape and
 * lifetime (invalid_grant), and when no other client authentication was sent presents the assertion
 * as the client assertion as well. Returns an RFC 6749 error pair, or undefined to go on.
 */
export function rewriteJwtBearer(params: URLSearchParams, authorization?: string): [string, string] | undefined {
  const assertions = params.getAll('assertion');
  if (assertions.length > 1) return ['invalid_request', 'assertion must be sent once'];
  const assertion = assertions[0];
  if (!assertion) return ['invalid_request', 'missing required parameter: assertion'];
  let claims: JWTPayload;
  try {
    claims = decodeJwt(assertion);
  } catch {
    return ['invalid_grant', 'assertion is not a JWT'];
  }
  const shape = shapeError(claims);
  if (shape) return ['invalid_grant', shape];
  const clientAuthenticated = !!authorization || params.has('client_assertion') || params.has('client_secret');
  if (clientAuthenticated) return undefined;
  const clientId = params.get('client_id');
  if (clientId !== null && clientId !== claims.iss) return ['invalid_grant', 'assertion iss must be the client_id'];
  params.set('client_assertion', assertion);
  params.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
  params.set('client_id', claims.iss!);
  return undefined;
}

/** What Flowgate requires of an assertion beyond its signature, in words for the error description. */
function shapeError(claims: JWTPayload): string | undefined {
  if (!claims.iss || claims.iss !== claims.sub) return 'assertion iss and sub must both be the client_id';
  if (typeof claims.exp !== 'number') return 'assertion must carry exp';
  if (claims.exp - Math.floor(Date.now() / 1000) > MAX_ASSERTION_LIFETIME) return `assertion exp must be at most ${MAX_ASSERTION_LIFETIME} seconds ahead`;
  if (!claims.jti) return JTI_REQUIRED;
  return undefined;
}

/** A client's registered public keys, kept per client until its registration changes. */
const keySets = new Map<string, { source: string; getKey: JWTVerifyGetKey }>();

function keysOf(client: { clientId: string; jwks?: { keys: readonly unknown[] }; jwksUri?: string }): JWTVerifyGetKey | undefined {
  const source = client.jwks ? JSON.stringify(client.jwks) : client.jwksUri;
  if (!source) return undefined;
  const hit = keySets.get(client.clientId);
  if (hit?.source === source) return hit.getKey;
  const getKey = client.jwks
    ? createLocalJWKSet(client.jwks as unknown as Parameters<typeof createLocalJWKSet>[0])
    : createRemoteJWKSet(new URL(client.jwksUri!), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  if (keySets.size >= 1000) keySets.clear();
  keySets.set(client.clientId, { source, getKey });
  return getKey;
}

/** RFC 7523 §3 for an assertion sent beside the client's own authentication; failures are invalid_grant (§3.1). */
async function verifyAssertion(ctx: TokenEndpointGrantContext, assertion: string): Promise<void> {
  const { client, provider } = ctx.oidc;
  let claims: JWTPayload;
  try {
    claims = decodeJwt(assertion);
  } catch {
    throw invalidGrant('assertion is not a JWT');
  }
  const shape = shapeError(claims);
  if (shape) throw invalidGrant(shape);
  if (claims.iss !== client.clientId) throw invalidGrant('assertion iss and sub must be the authenticated client');
  const getKey = keysOf(client);
  if (!getKey) throw invalidGrant('the client has no registered keys (jwks or jwks_uri) to verify the assertion with');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, getKey, {
      issuer: client.clientId,
      subject: client.clientId,
      audience: [provider.issuer, ctx.oidc.urlFor('token')],
      algorithms: CLIENT_AUTH_SIGNING_ALGS,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: CLOCK_TOLERANCE,
    }));
  } catch (err) {
    throw invalidGrant(`the assertion was refused: ${(err as Error).message}`);
  }
  const unique = await provider.ReplayDetection.unique(payload.iss!, payload.jti!, payload.exp! + CLOCK_TOLERANCE);
  if (!unique) throw invalidGrant('the assertion was already used: each jti is accepted once');
}

/**
 * Issues the client a token for itself through the provider's public model (what client_credentials
 * issues): the scopes asked for, each one the client may use, or the client's registered scopes when
 * none are asked for; a JWT for the workflow API when `resource` names it (RFC 8707).
 */
async function issueClientToken(ctx: TokenEndpointGrantContext, resourceServerInfo: ResourceServerInfo): Promise<void> {
  const { client, params, provider } = ctx.oidc;
  const allowed = new Set((client.scope ?? '').split(' ').filter(Boolean));
  const requested = typeof params.scope === 'string' ? params.scope.split(' ').filter(Boolean) : undefined;
  const denied = requested?.find((s) => !allowed.has(s));
  if (denied) throw new oidcErrors.InvalidScope('requested scope is not allowed', denied);
  let scopes = requested ?? [...allowed].filter((s) => RESOURCE_SCOPES.includes(s));

  const token = new provider.ClientCredentials({ client, scope: scopes.join(' ') || undefined });
  const resources = params.resource === undefined ? [] : Array.isArray(params.resource) ? params.resource : [params.resource];
  if (resources.length > 1) throw new oidcErrors.InvalidTarget('only a single resource indicator value is supported for this grant type');
  if (resources.length === 1) {
    const identifier = resources[0];
    const info = await resourceServerInfo(ctx, identifier);
    const server: ResourceServerInstance = { ...info, scopes: new Set(info.scope.split(' ')), identifier: () => identifier };
    token.resourceServer = server;
    scopes = scopes.filter((s) => server.scopes.has(s));
    token.scope = scopes.join(' ') || undefined;
  }
  const value = await token.save();
  ctx.body = {
    access_token: value,
    expires_in: token.expiration,
    token_type: token.tokenType,
    ...(token.scope && { scope: token.scope }),
  };
}
