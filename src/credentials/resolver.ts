import { createHash } from 'node:crypto';
import { decodeJwt, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import type { Role } from '../accounts/entities.js';
import { parseApiKey } from './api-key-format.js';
import { jwtDenied } from '../oauth/deny-list.js';
import { grantTag } from '../oauth/grant-tag.js';
import type { Cache } from '../storage/cache.js';
import { tags } from '../storage/invalidation.js';
import type { KeyValueStore } from '../storage/kv.js';
import { judgeKey, keyTags, type ApiKeyRow, type ApiKeyRows } from './api-key.js';
import type { ClientDirectory } from './client-directory.js';
import type { ClientKeys } from './client-keys.js';
import { OPAQUE_SHAPE, readAccessToken, readRefreshToken, type StoredToken } from './opaque-token.js';
import type { OwnJwtVerifier } from './own-jwt.js';
import { verifyServiceJwt } from './service-jwt.js';
import type { Asker, CredentialFailure, CredentialKind, FailureStatus, Resolution, ResolvedCredential } from './types.js';

/** Longer values are refused unread (a JWT with a large key set stays far below this). */
export const MAX_CREDENTIAL_LENGTH = 8192;

/** A cached resolution with what it read, so that a change to any of those drops it. */
interface Entry {
  resolution: Resolution;
  tags: string[];
  /** Epoch ms after which the entry must not be used (credential or secret expiry). */
  until?: number;
  /** false: depends on who asks (refresh tokens), never cached. */
  cache?: boolean;
}

export interface ResolverDeps {
  issuer: string;
  apiAudience: string;
  kv: KeyValueStore;
  provider: Provider;
  ownJwts: OwnJwtVerifier;
  keys: ApiKeyRows;
  clients: ClientDirectory;
  clientKeys: ClientKeys;
  /** The organization a grant acts for (the one the user chose at consent). */
  grantOrg: (grantId: string) => Promise<string | null>;
  /** The user's membership of the organization now (cached by the caller, tagged `member:`). */
  membership: (orgId: string, userId: string) => Promise<{ role: Role; teamId: string | null } | null>;
  /** Resolutions of found credentials, and of refused ones (kept shorter, bounded apart). */
  resolved: Cache<Resolution>;
  refused: Cache<Resolution>;
  /** Counts a use of an API key (`last_used_at`), whether or not the answer came from the cache. */
  onApiKeyUse: (keyId: string) => void;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const fail = (status: FailureStatus, more: Omit<CredentialFailure, 'ok' | 'status'> = {}): CredentialFailure => ({ ok: false, status, ...more });

/**
 * The one place a credential becomes a resolution. Dispatch is by shape, cheapest first: API-key
 * shape and checksum (any prefix this deployment ever issued: the hash decides) → JWT (this issuer:
 * access or exchanged token; another issuer: a client's service JWT) → opaque token. Every store is
 * asked only on a cache miss, and misses of one credential share one look-up.
 */
export class CredentialResolver {
  private readonly inflight = new Map<string, Promise<Entry>>();

  constructor(private readonly d: ResolverDeps) {}

  async resolve(token: string, asker?: Asker, hint?: string): Promise<Resolution> {
    if (!token || token.length > MAX_CREDENTIAL_LENGTH) return fail('malformed');
    const digest = createHash('sha256').update(token).digest('base64url');
    const cached = this.d.resolved.get(digest) ?? this.d.refused.get(digest);
    if (cached) return this.used(cached);
    let pending = this.inflight.get(digest);
    if (!pending) {
      const version = { resolved: this.d.resolved.version, refused: this.d.refused.version };
      pending = this.read(token, asker, hint).then((e) => {
        if (e.cache !== false) this.keep(digest, e, version);
        return e;
      });
      // Only answers that do not depend on the asker may be shared between concurrent requests.
      if (!OPAQUE_SHAPE.test(token)) {
        this.inflight.set(digest, pending);
        void pending.finally(() => this.inflight.delete(digest)).catch(() => {});
      }
    }
    return this.used((await pending).resolution);
  }

  private used(r: Resolution): Resolution {
    if (r.ok && r.kind === 'api_key') this.d.onApiKeyUse(r.keyId!);
    return r;
  }

  private keep(digest: string, e: Entry, version: { resolved: number; refused: number }): void {
    const ttlMs = e.until !== undefined ? e.until - Date.now() : undefined;
    if (e.resolution.ok) this.d.resolved.set(digest, e.resolution, version.resolved, { tags: e.tags, ttlMs });
    else this.d.refused.set(digest, e.resolution, version.refused, { tags: e.tags, ttlMs, negative: true });
  }

  private async read(token: string, asker: Asker | undefined, hint: string | undefined): Promise<Entry> {
    if (parseApiKey(token)) return this.apiKey(token);
    if (token.split('.').length === 3) {
      let claims: JWTPayload;
      try {
        claims = decodeJwt(token);
      } catch {
        return { resolution: fail('malformed'), tags: [] };
      }
      if (claims.iss === this.d.issuer) return this.ownJwt(token);
      return this.serviceJwt(token, claims);
    }
    if (!OPAQUE_SHAPE.test(token)) return { resolution: fail('malformed'), tags: [] };
    return this.opaque(token, asker, hint);
  }

  private async apiKey(presented: string): Promise<Entry> {
    const { row, hash } = await this.d.keys.forSecret(presented);
    if (!row) return { resolution: fail('unknown', { kind: 'api_key' }), tags: [] };
    const now = Date.now();
    const judged = judgeKey(row, { hash }, now);
    const t = keyTags(row);
    if (!judged.ok) return { resolution: { ...judged, kind: 'api_key' }, tags: t };
    const resolution: ResolvedCredential = {
      ...asKey(row),
      kind: 'api_key',
      clientId: null,
      scopes: row.scopes,
      expiresAt: row.expires_at ? Math.floor(row.expires_at.getTime() / 1000) : null,
      issuedAt: null,
      jti: null,
      audience: null,
      subject: row.created_by ?? row.id,
      queryAllowed: row.allow_query !== false,
    };
    // Kept no longer than the key lives, nor than the grace of a rolled-away secret.
    const until = Math.min(row.expires_at?.getTime() ?? Infinity, judged.matched === 'previous' ? row.previous_expires_at!.getTime() : Infinity);
    return { resolution, tags: t, ...(until !== Infinity && { until }) };
  }

  /** RFC 9068 access tokens and exchanged tokens, both signed by this deployment. */
  private async ownJwt(token: string): Promise<Entry> {
    const payload = await this.d.ownJwts.verify(token);
    if (!payload) return { resolution: fail('unknown'), tags: [] };
    const jti = payload.jti!;
    const gid = str(payload.gid);
    const revocationTags = [tags.jti(jti), ...(gid ? [tags.grant(gid)] : [])];
    if (await jwtDenied(this.d.kv, payload)) return { resolution: fail('revoked'), tags: revocationTags };
    const until = payload.exp! * 1000;
    const keyId = str(payload.key_id);
    if (keyId) return this.exchanged(payload, keyId, revocationTags, until);
    return this.accessToken(
      {
        jti,
        clientId: str(payload.client_id) ?? '',
        accountId: str(payload.sub) !== str(payload.client_id) ? str(payload.sub) : undefined,
        scope: str(payload.scope) ?? '',
        orgId: str(payload.org_id),
        exp: payload.exp!,
        iat: payload.iat ?? null,
        aud: payload.aud ?? null,
        subject: str(payload.sub) ?? str(payload.client_id) ?? '',
      },
      revocationTags,
      until,
    );
  }

  /**
   * A token bought with an API key (RFC 8693) is the key for its few minutes: the key's current
   * restrictions, creator, organization and budget; its scopes at most the key's current ones; and it
   * dies with the key (revoked, expired, creator gone, or the secret it was bought with rolled away).
   */
  private async exchanged(payload: JWTPayload, keyId: string, revocationTags: string[], until: number): Promise<Entry> {
    const row = await this.d.keys.get(keyId);
    const t = [...revocationTags, ...(row ? keyTags(row) : [tags.key(keyId)])];
    if (!row || row.org_id !== payload.org_id) return { resolution: fail('revoked', { kind: 'exchanged_token', keyId }), tags: t };
    const judged = judgeKey(row, { fingerprint: str(payload.kfp) }, Date.now());
    if (!judged.ok) return { resolution: { ...judged, kind: 'exchanged_token' }, tags: t };
    const clientId = str(payload.client_id);
    // Exchanged by an authenticated OAuth client: that client must still exist, in the key's organization.
    const viaClient = clientId && clientId !== keyId ? clientId : null;
    if (viaClient) {
      const client = await this.d.clients.get(viaClient);
      t.push(tags.client(viaClient));
      if (!client || client.orgId !== row.org_id) return { resolution: fail('revoked', { kind: 'exchanged_token', keyId }), tags: t };
    }
    const held = new Set(row.scopes);
    const resolution: ResolvedCredential = {
      ...asKey(row),
      kind: 'exchanged_token',
      clientId: viaClient,
      scopes: (str(payload.scope) ?? '').split(' ').filter((s) => s && held.has(s)),
      expiresAt: payload.exp!,
      issuedAt: payload.iat ?? null,
      jti: payload.jti!,
      audience: payload.aud ?? null,
      subject: str(payload.sub) ?? keyId,
      queryAllowed: false,
    };
    const graceEnd = judged.matched === 'previous' ? row.previous_expires_at!.getTime() : Infinity;
    return { resolution, tags: t, until: Math.min(until, graceEnd) };
  }

  private async serviceJwt(token: string, claims: JWTPayload): Promise<Entry> {
    if (!claims.iss || claims.iss !== claims.sub) return { resolution: fail('unknown'), tags: [] };
    const v = await verifyServiceJwt(token, claims.iss, this.d);
    if (!v) return { resolution: fail('unknown'), tags: [] };
    const jti = str(v.payload.jti);
    const t = [tags.client(v.client.clientId), ...(jti ? [tags.jti(jti)] : [])];
    if (jti && (await jwtDenied(this.d.kv, { jti }))) return { resolution: fail('revoked', { kind: 'service_jwt' }), tags: t };
    const resolution: ResolvedCredential = {
      ok: true,
      kind: 'service_jwt',
      orgId: v.client.orgId,
      userId: null,
      role: null,
      memberTeamId: null,
      clientId: v.client.clientId,
      keyId: null,
      scopes: v.scopes,
      teamId: null,
      workflowId: null,
      expiresAt: v.payload.exp!,
      issuedAt: v.payload.iat ?? null,
      jti: jti ?? null,
      audience: v.payload.aud ?? null,
      subject: v.client.clientId,
      queryAllowed: false,
      plan: null,
      keyLimits: null,
      orgLimits: null,
    };
    return { resolution, tags: t, until: v.payload.exp! * 1000 };
  }

  /**
   * `token_type_hint` only orders the look-ups: RFC 7662 §2.1 says a server that cannot find the token
   * under the hinted type MUST extend its search to every type it supports.
   */
  private async opaque(token: string, asker: Asker | undefined, hint: string | undefined): Promise<Entry> {
    let askerDependent = false;
    const access = async () => {
      const t = await readAccessToken(this.d.kv, token);
      return t ? this.accessToken(fromStored(t), storedTags(t), t.exp * 1000) : undefined;
    };
    const refresh = async () => {
      // Refresh tokens are answered to resource servers only (introspection), never to Flowgate's API.
      if (!asker) return undefined;
      const t = await readRefreshToken(this.d.provider, token);
      if (!t) return undefined;
      // Whatever the answer, it depends on who asks: never cache it.
      askerDependent = true;
      // RFC 7662 §2.1 leaves it to the server: a refresh token is a secret between the AS and its client.
      if (t.clientId !== asker.clientId) return undefined;
      // Access tokens carry their organization; a refresh token's is its grant's.
      const orgId = t.grantId ? await this.d.grantOrg(t.grantId) : null;
      return this.accessToken({ ...fromStored(t), orgId: orgId ?? undefined }, storedTags(t), t.exp * 1000, 'refresh_token');
    };
    const found = hint === 'refresh_token' ? ((await refresh()) ?? (await access())) : ((await access()) ?? (await refresh()));
    const e = found ?? { resolution: fail('unknown'), tags: [] };
    return askerDependent ? { ...e, cache: false } : e;
  }

  /**
   * What every OAuth token (opaque or JWT, access or refresh) must still satisfy: its client exists;
   * a client's own token acts in the client's organization only; a user's token only while the user
   * is a member of the organization it was issued for.
   */
  private async accessToken(t: TokenFields, revocationTags: string[], until: number, kind: CredentialKind = 'access_token'): Promise<Entry> {
    const t2 = [...revocationTags, tags.client(t.clientId)];
    const client = t.clientId ? await this.d.clients.get(t.clientId) : null;
    if (!client) return { resolution: fail('revoked', { kind }), tags: t2 };
    const orgId = t.orgId ?? client.orgId;
    let role: Role | null = null;
    let memberTeamId: string | null = null;
    if (!t.accountId) {
      if (orgId !== client.orgId) return { resolution: fail('revoked', { kind }), tags: t2 };
    } else if (orgId) {
      t2.push(tags.member(orgId, t.accountId));
      const m = await this.d.membership(orgId, t.accountId);
      if (!m) return { resolution: fail('not_member', { kind, orgId }), tags: t2 };
      role = m.role;
      memberTeamId = m.teamId;
    }
    const resolution: ResolvedCredential = {
      ok: true,
      kind,
      orgId,
      userId: t.accountId ?? null,
      role,
      memberTeamId,
      clientId: t.clientId,
      keyId: null,
      scopes: t.scope.split(' ').filter(Boolean),
      teamId: null,
      workflowId: null,
      expiresAt: t.exp,
      issuedAt: t.iat,
      jti: t.jti,
      audience: t.aud,
      subject: t.subject,
      queryAllowed: false,
      plan: null,
      keyLimits: null,
      orgLimits: null,
    };
    return { resolution, tags: t2, until };
  }
}

/** What a key and every token derived from it share: who, where, within what, on whose budget. */
function asKey(row: ApiKeyRow) {
  return {
    ok: true as const,
    orgId: row.org_id,
    userId: row.created_by,
    role: row.creator_role as Role | null,
    memberTeamId: null,
    keyId: row.id,
    teamId: row.team_id,
    workflowId: row.workflow_id,
    plan: row.org_plan,
    keyLimits: row.rate_limit,
    orgLimits: row.org_limits,
  };
}

interface TokenFields {
  jti: string;
  clientId: string;
  accountId?: string;
  scope: string;
  orgId?: string;
  exp: number;
  iat: number | null;
  aud: string | string[] | null;
  subject: string;
}

function fromStored(t: StoredToken): TokenFields {
  return {
    jti: t.jti,
    clientId: t.clientId,
    accountId: t.accountId,
    scope: t.scope ?? '',
    orgId: str(t.extra?.org_id),
    exp: t.exp,
    iat: t.iat ?? null,
    aud: t.aud ?? null,
    subject: t.accountId ?? t.clientId,
  };
}

function storedTags(t: StoredToken): string[] {
  return [tags.jti(t.jti), ...(t.grantId ? [tags.grant(grantTag(t.grantId))] : [])];
}

