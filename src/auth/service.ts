import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../config/schema.js';
import type { AccountsService } from '../accounts/service.js';
import type { Provider } from '../oauth/provider.js';
import { publicJwks, readKeys } from '../oauth/signing-keys.js';
import { CredentialParseError, parseCredential, type PresentedCredential } from '../http/credentials.js';
import { looksLikeApiKey } from '../apikeys/format.js';
import type { ApiKeyVerifier } from '../apikeys/verify.js';
import { apiKeyError, authErrors } from './errors.js';
import type { FallbackResolver, Principal, PrincipalRequest } from './principal.js';

export interface AuthDeps {
  config: Config;
  accounts: AccountsService;
  provider: Provider;
  apiKeys: ApiKeyVerifier;
}

/** Checked after signature and claims; the introspection work plugs its `jti` deny list in here. */
export type JwtRevocationCheck = (payload: JWTPayload) => Promise<boolean>;

/** Runs on every principal resolve() returns; throws the AppError to answer with instead (e.g. 429). */
export type ResolvedHook = (p: Principal) => Promise<void>;

/**
 * Resolves the principal of a request to Flowgate's own API. One credential per request, found by
 * src/http/credentials.ts: API keys (by shape) go to the key verifier; other Bearer values are
 * OAuth access tokens (opaque via the provider's models, JWT via Flowgate's own signing keys).
 * Without a credential, fallback resolvers (the dashboard session) get a turn.
 */
export class AuthService {
  private readonly fallbacks: FallbackResolver[] = [];
  private readonly resolvedHooks: ResolvedHook[] = [];
  private jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  jwtRevoked: JwtRevocationCheck = async () => false;

  constructor(private readonly deps: AuthDeps) {}

  /** E.g. the dashboard's session resolver. Tried in order when no credential is presented. */
  addFallbackResolver(r: FallbackResolver): void {
    this.fallbacks.push(r);
  }

  /** E.g. the management API's rate limit: every caller of resolve(), whatever its credential. */
  onResolved(hook: ResolvedHook): void {
    this.resolvedHooks.push(hook);
  }

  /** The principal, or throws the AppError to answer with (401 MISSING_API_KEY when there is nothing). */
  async resolve(req: PrincipalRequest): Promise<Principal> {
    const p = await this.principalOf(req);
    for (const hook of this.resolvedHooks) await hook(p);
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
      for (const r of this.fallbacks) {
        const p = await r(req);
        if (p) return p;
      }
      throw authErrors.missing();
    }
    if (cred.source !== 'authorization' || looksLikeApiKey(cred.value)) return this.fromApiKey(cred);
    return this.fromAccessToken(cred);
  }

  /** An API key, presented as `cred` (verify, then the organization's query-string setting). */
  async fromApiKey(cred: PresentedCredential): Promise<Principal> {
    const v = await this.deps.apiKeys.verify(cred.value);
    if (!v.ok) throw apiKeyError(v);
    const k = v.key;
    if (cred.source === 'query' && !k.orgAllowsQueryKey) throw authErrors.queryKeyDisabled();
    return {
      kind: 'api_key',
      orgId: k.orgId,
      keyId: k.id,
      ...(k.createdBy && { userId: k.createdBy }),
      // Keys made by the CLI (no creator) act as organization admins, within their scopes.
      role: k.createdBy ? (k.creatorRole ?? 'member') : 'admin',
      scopes: k.scopes,
      teamId: k.teamId,
      workflowId: k.workflowId,
      expiresAt: k.expiresAt,
      source: cred.source,
      rateLimit: k.rateLimit,
    };
  }

  private async fromAccessToken(cred: PresentedCredential): Promise<Principal> {
    const claims = cred.value.split('.').length === 3 ? await this.jwtClaims(cred.value) : await this.opaqueClaims(cred.value);
    if (!claims) throw authErrors.invalidToken();
    // The client's organization, looked up once: the token's org when it names none, and what a
    // client-credentials token's org must match.
    const ownerOrg = claims.orgId && claims.userId ? undefined : await this.clientOrg(claims.clientId);
    const orgId = claims.orgId ?? ownerOrg;
    if (!orgId) throw authErrors.invalidToken('The access token is not bound to an organization');
    const base = {
      kind: 'access_token' as const,
      orgId,
      clientId: claims.clientId,
      scopes: claims.scope.split(' ').filter(Boolean),
      expiresAt: claims.exp ? new Date(claims.exp * 1000) : null,
      source: cred.source,
    };
    if (!claims.userId) {
      // Client credentials: the organization's own machine client, acting as an admin within its scopes.
      if (ownerOrg !== orgId) throw authErrors.invalidToken();
      return { ...base, role: 'admin' };
    }
    const m = await this.deps.accounts.membership(orgId, claims.userId);
    if (!m) throw authErrors.notMember();
    return { ...base, userId: claims.userId, role: m.role, teamId: m.teamId };
  }

  private async opaqueClaims(token: string): Promise<TokenClaims | undefined> {
    const { AccessToken, ClientCredentials } = this.deps.provider;
    const at = await AccessToken.find(token);
    if (at && at.isValid) {
      return { userId: at.accountId, clientId: at.clientId, scope: at.scope ?? '', orgId: str(at.extra?.org_id), exp: at.exp };
    }
    const cc = await ClientCredentials.find(token);
    if (cc && cc.isValid) return { clientId: cc.clientId, scope: cc.scope ?? '', orgId: str(cc.extra?.org_id), exp: cc.exp };
    return undefined;
  }

  /** RFC 9068 JWT access tokens for the workflow API, signed by this deployment's keys. */
  private async jwtClaims(token: string): Promise<TokenClaims | undefined> {
    const verifyWith = async () =>
      (
        await jwtVerify(token, this.keySet(), {
          issuer: this.deps.config.issuer,
          audience: this.deps.config.apiAudience,
          typ: 'at+jwt',
          algorithms: ['ES256', 'RS256'],
        })
      ).payload;
    let payload: JWTPayload;
    try {
      payload = await verifyWith();
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') return undefined;
      this.jwks = undefined; // keys were rotated: read them again once
      try {
        payload = await verifyWith();
      } catch {
        return undefined;
      }
    }
    if (await this.jwtRevoked(payload)) return undefined;
    const clientId = str(payload.client_id);
    const sub = str(payload.sub);
    return {
      clientId,
      // RFC 9068 §2.2: for client-credentials tokens `sub` is the client itself.
      userId: sub && sub !== clientId ? sub : undefined,
      scope: str(payload.scope) ?? '',
      orgId: str(payload.org_id),
      exp: payload.exp,
    };
  }

  private keySet() {
    this.jwks ??= createLocalJWKSet(publicJwks(readKeys(this.deps.config.keysDir)));
    return this.jwks;
  }

  private async clientOrg(clientId: string | undefined): Promise<string | undefined> {
    if (!clientId) return undefined;
    const client = await this.deps.provider.Client.find(clientId);
    return str(client?.metadata().org_id);
  }
}

interface TokenClaims {
  userId?: string;
  clientId?: string;
  scope: string;
  orgId?: string;
  exp?: number;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
