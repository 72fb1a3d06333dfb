import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { StoredKey } from '../signing-keys.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const API_KEY_TOKEN_TYPE = 'urn:flowgate:params:oauth:token-type:api-key';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** Exchanged tokens are verified locally by busy callers, so they must not outlive a revocation long. */
export const EXCHANGED_TOKEN_TTL = 300;

export interface ExchangeSubject {
  keyId: string;
  orgId: string;
  teamId: string | null;
  workflowId: string | null;
  scopes: string[];
  sub: string;
  expiresAt: number | undefined;
}

export interface ExchangeDeps {
  issuer: string;
  apiAudience: string;
  signingKey: StoredKey;
  /** Verifies the API key; null when it is not active. */
  verifyApiKey: (key: string) => Promise<ExchangeSubject | null>;
}

type Result = { status: number; body: Record<string, unknown> };

const err = (status: number, error: string, description: string): Result => ({ status, body: { error, error_description: description } });

/**
 * RFC 8693 token exchange: an API key (subject_token) buys a short-lived JWT access token (RFC 9068)
 * with the same or narrower scopes, for callers that want to verify locally from the JWKS.
 *
 * No client authentication is required besides the key (RFC 8693 §2.1 makes it optional): the key is
 * itself the credential, the organization's scripts that hold keys have no OAuth client, and the
 * exchanged token can do nothing the key cannot, for at most five minutes.
 */
export async function exchangeApiKey(deps: ExchangeDeps, params: URLSearchParams): Promise<Result> {
  if (params.get('subject_token_type') !== API_KEY_TOKEN_TYPE) {
    return err(400, 'invalid_request', `subject_token_type must be ${API_KEY_TOKEN_TYPE}`);
  }
  const requestedType = params.get('requested_token_type');
  if (requestedType && requestedType !== ACCESS_TOKEN_TYPE) {
    return err(400, 'invalid_request', `only ${ACCESS_TOKEN_TYPE} can be requested`);
  }
  const audience = params.get('audience') ?? params.get('resource');
  if (audience && audience !== deps.apiAudience) return err(400, 'invalid_target', `unknown audience; use ${deps.apiAudience}`);
  const subjectToken = params.get('subject_token');
  if (!subjectToken) return err(400, 'invalid_request', 'missing required parameter: subject_token');
  const subject = await deps.verifyApiKey(subjectToken);
  if (!subject) return err(400, 'invalid_grant', 'subject_token is not an active API key');
  const requested = (params.get('scope') ?? '').split(' ').filter(Boolean);
  const notHeld = requested.filter((s) => !subject.scopes.includes(s));
  if (notHeld.length) return err(400, 'invalid_scope', `the API key does not hold: ${notHeld.join(' ')}`);
  const scopes = requested.length ? requested : subject.scopes;
  const now = Math.floor(Date.now() / 1000);
  const exp = Math.min(now + EXCHANGED_TOKEN_TTL, subject.expiresAt ?? Infinity);
  const { created_at: _c, retired_at: _r, ...jwk } = deps.signingKey;
  const key = await importJWK(jwk as JWK, deps.signingKey.alg);
  const token = await new SignJWT({
    client_id: subject.keyId,
    scope: scopes.join(' '),
    org_id: subject.orgId,
    team_id: subject.teamId,
    workflow_id: subject.workflowId,
    key_id: subject.keyId,
  })
    .setProtectedHeader({ alg: deps.signingKey.alg, kid: deps.signingKey.kid, typ: 'at+jwt' })
    .setIssuer(deps.issuer)
    .setSubject(subject.sub)
    .setAudience(deps.apiAudience)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .setJti(randomUUID())
    .sign(key);
  return {
    status: 200,
    body: {
      access_token: token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: exp - now,
      scope: scopes.join(' '),
    },
  };
}
