import { CredentialParseError, parseCredential, type PresentedCredential } from '@flowgate/sdk/credentials';
import { looksLikeApiKey } from '../credentials/api-key-format.js';
import type { CredentialResolver } from '../credentials/resolver.js';
import type { CredentialFailure, ResolvedCredential } from '../credentials/types.js';
import { authErrors } from './errors.js';
import type { FallbackResolver, Principal, PrincipalRequest } from './principal.js';

/** Runs before a credential is resolved; throws the AppError to answer with instead (e.g. 429). */
export type BeforeHook = (req: PrincipalRequest) => Promise<void>;
/** Runs on every principal resolve() returns; throws the AppError to answer with instead (e.g. 429). */
export type ResolvedHook = (p: Principal) => Promise<void>;
/** Told of every presented credential that was refused (e.g. to throttle guessing). */
export type RefusedHook = (req: PrincipalRequest) => Promise<void>;

export interface AuthDeps {
  resolver: CredentialResolver;
  /** Tried in order when the request carries no credential (the dashboard's session). */
  fallbacks?: FallbackResolver[];
  before?: BeforeHook[];
  onResolved?: ResolvedHook[];
  onRefused?: RefusedHook[];
}

/**
 * The principal of a request to Flowgate's own API. The credential is found by
 * @flowgate/sdk's credential parser and resolved by the one credential resolver, exactly as introspection does;
 * this maps the resolution to a principal (or to the documented error) and nothing more.
 * API keys (and tokens exchanged from them) and OAuth access tokens are accepted; a key found in
 * `x-api-key` or the `api-key` query parameter is always read as an API key.
 */
export class AuthService {
  constructor(private readonly d: AuthDeps) {}

  /** The principal, or throws the AppError to answer with (401 MISSING_API_KEY when there is nothing). */
  async resolve(req: PrincipalRequest): Promise<Principal> {
    for (const hook of this.d.before ?? []) await hook(req);
    const p = await this.principalOf(req);
    for (const hook of this.d.onResolved ?? []) await hook(p);
    return p;
  }

  private async principalOf(req: PrincipalRequest): Promise<Principal> {
    let cred: PresentedCredential | undefined;
    try {
      cred = parseCredential(req);
    } catch (err) {
      if (err instanceof CredentialParseError) throw authErrors.badCredential(err.code, err.message);
      throw err;
    }
    if (!cred) {
      for (const r of this.d.fallbacks ?? []) {
        const p = await r(req);
        if (p) return p;
      }
      throw authErrors.missing();
    }
    const asKey = cred.source !== 'authorization' || looksLikeApiKey(cred.value);
    const r = await this.d.resolver.resolve(cred.value);
    if (!r.ok || (asKey && r.kind !== 'api_key') || !accepted(r)) {
      for (const hook of this.d.onRefused ?? []) await hook(req);
      throw asKey ? keyError(r.ok ? { ok: false, status: 'unknown' } : r) : authErrors.invalidToken();
    }
    // An organization may refuse keys in URLs (they end up in logs): refused whenever the key was in
    // the query string, even if it was sent in a header as well.
    if (cred.inQuery && !r.queryAllowed) throw authErrors.queryKeyDisabled();
    if (!r.orgId) throw authErrors.invalidToken('The access token is not bound to an organization');
    return principal(r, r.orgId, cred);
  }
}

/** Credentials Flowgate's API accepts: keys, tokens exchanged from them, and OAuth access tokens. */
function accepted(r: ResolvedCredential): boolean {
  return r.kind === 'api_key' || r.kind === 'exchanged_token' || r.kind === 'access_token';
}

function keyError(f: CredentialFailure) {
  if (f.status === 'expired') return authErrors.expiredKey(f.keyId!, f.expiredAt!);
  return authErrors.invalidKey(f.status === 'malformed' || f.status === 'unknown' ? undefined : f.keyId);
}

function principal(r: ResolvedCredential, orgId: string, cred: PresentedCredential): Principal {
  const common = {
    orgId,
    scopes: r.scopes,
    expiresAt: r.expiresAt !== null ? new Date(r.expiresAt * 1000) : null,
    source: cred.source,
  };
  if (r.kind === 'api_key' || r.kind === 'exchanged_token') {
    // A key acts for its creator, with the creator's current role, within the key's scopes and
    // restrictions; keys made by the CLI (no creator) act as organization admins within their scopes.
    // A token exchanged from a key is that key.
    return {
      ...common,
      kind: 'api_key',
      keyId: r.keyId!,
      ...(r.userId && { userId: r.userId }),
      ...(r.kind === 'exchanged_token' && { exchanged: true, ...(r.clientId && { clientId: r.clientId }) }),
      role: r.userId ? (r.role ?? 'member') : 'admin',
      teamId: r.teamId,
      workflowId: r.workflowId,
      rateLimit: r.keyLimits,
    };
  }
  if (!r.userId) {
    // Client credentials: the organization's own machine client, acting as an admin within its scopes.
    return { ...common, kind: 'access_token', clientId: r.clientId!, role: 'admin' };
  }
  return { ...common, kind: 'access_token', clientId: r.clientId!, userId: r.userId, role: r.role!, teamId: r.memberTeamId };
}
