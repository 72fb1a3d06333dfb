import type { Role } from '../accounts/entities.js';
import type { Actor } from '../audit/service.js';
import type { CredentialRequest, CredentialSource } from '@flowgate/sdk/credentials';

export type PrincipalKind = 'api_key' | 'access_token' | 'session';

/**
 * Who is calling Flowgate's own API, resolved from one credential. Never carries a secret.
 * - api_key: `keyId`; `userId` is the key's creator (absent for keys made by the CLI, which act as
 *   organization admins within their scopes); `role` is the creator's current role. A token
 *   exchanged from a key is that key (`exchanged: true`), with the scopes it was issued with.
 * - access_token: `userId` + `role` for tokens issued to a user, `clientId` alone (role admin) for
 *   client-credentials tokens of the organization's own clients.
 * - session: a signed-in dashboard user (resolver added by the dashboard).
 */
export interface Principal {
  kind: PrincipalKind;
  orgId: string;
  userId?: string;
  keyId?: string;
  clientId?: string;
  scopes: string[];
  role?: Role;
  teamId?: string | null;
  workflowId?: string | null;
  expiresAt?: Date | null;
  /** Where the credential was found (api_key and access_token). */
  source?: CredentialSource;
  /** Per-key rate-limit override (api_key only); null = plan defaults. */
  rateLimit?: Record<string, unknown> | null;
  /** api_key only: presented as a token exchanged from the key (RFC 8693), which acts as the key. */
  exchanged?: boolean;
}

/** A request as principal resolution sees it: plain data, no Koa (services never import Koa). */
export interface PrincipalRequest extends CredentialRequest {
  ip?: string;
  /** Koa's ctx.cookies fits; session resolvers read their (signed) cookie through it. */
  cookies?: { get(name: string, opts?: { signed?: boolean }): string | undefined };
}

/**
 * Resolves a principal when the request carries no Bearer / x-api-key / api-key credential, e.g. the
 * dashboard's session cookie. Returns undefined when it does not apply.
 */
export type FallbackResolver = (req: PrincipalRequest) => Promise<Principal | undefined>;

/** The audit actor for changes a principal makes. */
export function actorOf(p: Principal, ip?: string | null): Actor {
  if (p.kind === 'api_key') return { type: 'api_key', id: p.keyId ?? null, ip: ip ?? null };
  if (p.userId) return { type: 'user', id: p.userId, ip: ip ?? null };
  return { type: 'client', id: p.clientId ?? null, ip: ip ?? null };
}

/** Owners and admins manage every key of their organization; members only their own. */
export function isOrgAdmin(p: Principal): boolean {
  return p.role === 'owner' || p.role === 'admin';
}

/** The principal as the whoami endpoint shows it: no secrets, snake_case. */
export function principalView(p: Principal) {
  return {
    kind: p.kind,
    org_id: p.orgId,
    user_id: p.userId ?? null,
    key_id: p.keyId ?? null,
    client_id: p.clientId ?? null,
    role: p.role ?? null,
    scopes: p.scopes,
    team_id: p.teamId ?? null,
    workflow_id: p.workflowId ?? null,
    expires_at: p.expiresAt ? p.expiresAt.toISOString() : null,
    credential_source: p.source ?? null,
    exchanged: p.exchanged ?? false,
  };
}
