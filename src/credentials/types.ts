import type { Role } from '../accounts/entities.js';

/**
 * Every credential Flowgate accepts, turned into one value. Introspection maps it to RFC 7662,
 * Flowgate's own API to a principal, the rate limiter to a budget; none of them reads a credential
 * itself.
 *
 * - api_key: a secret key of an organization (`sk-…`), acting for its creator.
 * - access_token: an OAuth access token, opaque or RFC 9068 JWT, for a user (authorization code) or
 *   for the client itself (client credentials, JWT-bearer).
 * - exchanged_token: a JWT bought with an API key (RFC 8693). It is the key, for five minutes: the
 *   key's restrictions, budget and creator, its scopes narrowed at most, and it dies with the key.
 * - service_jwt: a JWT a registered client signed with its own key for a workflow service.
 * - refresh_token: only ever answered to the client it was issued to (introspection).
 */
export type CredentialKind = 'api_key' | 'access_token' | 'exchanged_token' | 'service_jwt' | 'refresh_token';

export interface ResolvedCredential {
  ok: true;
  kind: CredentialKind;
  /** The organization it acts in; null for tokens of platform-wide clients. */
  orgId: string | null;
  /** The user it acts for: the token's user, or the key's creator. */
  userId: string | null;
  /** That user's role in the organization now (null: no user, e.g. keys made by the CLI). */
  role: Role | null;
  /** The user's own team in the organization (informational: it restricts nothing). */
  memberTeamId: string | null;
  /** The OAuth client it was issued to, or that signed it. */
  clientId: string | null;
  /** The API key it is, or was exchanged from. */
  keyId: string | null;
  scopes: string[];
  /** Restrictions (keys and what derives from them): the credential acts only within these. */
  teamId: string | null;
  workflowId: string | null;
  /** Epoch seconds. */
  expiresAt: number | null;
  issuedAt: number | null;
  jti: string | null;
  audience: string | string[] | null;
  /** `sub` as issued (a user id, a client id, or the key id for keys without a creator). */
  subject: string;
  /** The organization accepts this credential in a URL's query string (API keys only). */
  queryAllowed: boolean;
  /** The organization's plan, and the overrides that set this credential's budget. */
  plan: string | null;
  keyLimits: Record<string, unknown> | null;
  orgLimits: Record<string, unknown> | null;
}

/** Why a credential is not accepted. `keyId`/`orgId` are known when the credential was found. */
export type FailureStatus = 'malformed' | 'unknown' | 'revoked' | 'rolled' | 'expired' | 'not_member' | 'wrong_audience';

export interface CredentialFailure {
  ok: false;
  status: FailureStatus;
  kind?: CredentialKind;
  keyId?: string;
  orgId?: string;
  expiredAt?: Date;
}

export type Resolution = ResolvedCredential | CredentialFailure;

/** The calling resource server, for the credentials whose answer depends on who asks. */
export interface Asker {
  clientId: string;
}
