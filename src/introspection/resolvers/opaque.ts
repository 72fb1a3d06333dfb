import type Provider from 'oidc-provider';
import type { KeyValueStore } from '../../storage/kv.js';
import type { ActiveAnswer, Caller } from '../types.js';

const OPAQUE = /^[A-Za-z0-9_-]{20,128}$/;

interface StoredToken {
  jti: string;
  kind: string;
  exp: number;
  iat: number;
  clientId: string;
  accountId?: string;
  scope?: string;
  aud?: string | string[];
  extra?: Record<string, unknown>;
  consumed?: number;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * Opaque access tokens (AccessToken, ClientCredentials) live in the KV store under the adapter's
 * keys; both candidates are read in one round trip (MGET) instead of two provider look-ups.
 * Refresh tokens (PostgreSQL) are answered only to the client they were issued to.
 *
 * `token_type_hint` only orders the look-ups: RFC 7662 §2.1 says a server that cannot find the token
 * under the hinted type MUST extend its search to every type it supports.
 */
export function opaqueResolver(provider: Provider, kv: KeyValueStore, issuer: string) {
  async function accessToken(token: string): Promise<ActiveAnswer | null> {
    const [at, cc] = await kv.mGet([`oidc:AccessToken:${token}`, `oidc:ClientCredentials:${token}`]);
    const raw = at ?? cc;
    if (!raw) return null;
    const t = JSON.parse(raw) as StoredToken;
    if (t.jti !== token || t.exp <= now()) return null;
    return {
      active: true,
      scope: t.scope ?? '',
      client_id: t.clientId,
      sub: t.accountId ?? t.clientId,
      exp: t.exp,
      iat: t.iat,
      iss: issuer,
      ...(t.aud !== undefined && { aud: t.aud }),
      token_type: 'Bearer',
      jti: t.jti,
      credential_type: 'access_token',
      org_id: (t.extra?.org_id as string | undefined) ?? null,
      team_id: null,
      workflow_id: null,
    };
  }

  async function refreshToken(token: string, caller: Caller): Promise<ActiveAnswer | null> {
    const rt = await provider.RefreshToken.find(token);
    if (!rt || rt.isExpired || (rt as any).consumed) return null;
    // RFC 7662 §2.1 leaves it to the server; a refresh token is a secret between the AS and its client.
    if (rt.clientId !== caller.clientId) return null;
    return {
      active: true,
      scope: rt.scope ?? '',
      client_id: rt.clientId,
      sub: rt.accountId,
      exp: rt.exp,
      iat: rt.iat,
      iss: issuer,
      token_type: 'refresh_token',
      jti: rt.jti,
      credential_type: 'refresh_token',
      org_id: null,
    };
  }

  return async (token: string, caller: Caller, hint?: string): Promise<ActiveAnswer | null> => {
    if (!OPAQUE.test(token)) return null;
    if (hint === 'refresh_token') return (await refreshToken(token, caller)) ?? accessToken(token);
    return (await accessToken(token)) ?? refreshToken(token, caller);
  };
}
