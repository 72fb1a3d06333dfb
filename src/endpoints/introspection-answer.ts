import type { CredentialFailure, Resolution, ResolvedCredential } from '../credentials/types.js';

/** RFC 7662 §2.2 answer plus Flowgate's fields. */
export interface ActiveAnswer {
  active: true;
  scope: string;
  /** RFC 7662 §2.2: the OAuth client the token was issued to; absent for API keys, which have none. */
  client_id?: string;
  sub: string;
  exp?: number;
  iat?: number;
  iss: string;
  aud?: string | string[];
  token_type: string;
  jti?: string;
  credential_type: 'access_token' | 'refresh_token' | 'api_key' | 'service_jwt';
  org_id: string | null;
  team_id: string | null;
  workflow_id: string | null;
  /** The API key this is, or (for a token exchanged from a key, RFC 8693) the key it acts as. */
  key_id?: string;
  [extra: string]: unknown;
}

/**
 * Why a credential is inactive, told only to a resource server of the credential's own organization
 * (RFC 7662 §2.2 says an AS SHOULD NOT explain inactive tokens to third parties; the organization's
 * own services need it to tell their callers "expired" from "revoked").
 */
export interface InactiveAnswer {
  active: false;
  inactive_reason?: 'expired' | 'revoked' | 'rolled' | 'query_key_disabled';
  expired_at?: string;
}

export type Answer = ActiveAnswer | InactiveAnswer;

export const INACTIVE: InactiveAnswer = Object.freeze({ active: false as const });

/** The calling resource server: org-owned ones see their organization's credentials only. */
export interface Caller {
  clientId: string;
  /** null: a platform-wide resource server (registered by an operator), which sees every organization. */
  orgId: string | null;
}

export function sees(caller: Caller, orgId: string | null | undefined): boolean {
  return caller.orgId === null || (orgId != null && orgId === caller.orgId);
}

const answers = new WeakMap<ResolvedCredential, ActiveAnswer>();

/** The RFC 7662 answer of a resolved credential (built once per cached resolution). */
export function activeAnswer(r: ResolvedCredential, issuer: string): ActiveAnswer {
  let a = answers.get(r);
  if (a) return a;
  const keyLike = r.kind === 'api_key' || r.kind === 'exchanged_token';
  a = {
    active: true,
    scope: r.scopes.join(' '),
    ...(r.clientId && { client_id: r.clientId }),
    sub: r.subject,
    ...(r.expiresAt !== null && { exp: r.expiresAt }),
    ...(r.issuedAt !== null && { iat: r.issuedAt }),
    iss: issuer,
    ...(r.audience !== null && { aud: r.audience }),
    token_type: r.kind === 'refresh_token' ? 'refresh_token' : 'Bearer',
    ...(r.jti && { jti: r.jti }),
    credential_type: r.kind === 'exchanged_token' ? 'access_token' : r.kind,
    org_id: r.orgId,
    team_id: keyLike ? r.teamId : null,
    workflow_id: keyLike ? r.workflowId : null,
    ...(r.keyId && { key_id: r.keyId }),
  };
  answers.set(r, a);
  return a;
}

/** The inactive answer for a caller: with its reason when the credential is of the caller's organization. */
export function inactiveAnswer(f: CredentialFailure | 'query_key_disabled', caller: Caller): InactiveAnswer {
  if (f === 'query_key_disabled') return { active: false, inactive_reason: 'query_key_disabled' };
  if (!f.orgId || !sees(caller, f.orgId)) return INACTIVE;
  if (f.status === 'expired') return { active: false, inactive_reason: 'expired', ...(f.expiredAt && { expired_at: f.expiredAt.toISOString() }) };
  if (f.status === 'revoked' || f.status === 'not_member') return { active: false, inactive_reason: 'revoked' };
  if (f.status === 'rolled') return { active: false, inactive_reason: 'rolled' };
  return INACTIVE;
}

export type { Resolution };
