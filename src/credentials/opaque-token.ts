import type Provider from 'oidc-provider';
import type { KeyValueStore } from '../storage/kv.js';
import { artifactKey } from '../oauth/adapter.js';

/** Opaque tokens are the provider's random ids (base64url); anything else is not looked up at all. */
export const OPAQUE_SHAPE = /^[A-Za-z0-9_-]{20,128}$/;

/** An opaque token as the provider stored it (the fields Flowgate reads). */
export interface StoredToken {
  jti: string;
  kind: string;
  exp: number;
  iat: number;
  clientId: string;
  accountId?: string;
  scope?: string;
  aud?: string | string[];
  grantId?: string;
  extra?: Record<string, unknown>;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * Opaque access tokens (AccessToken, ClientCredentials) live in the key-value store under the
 * adapter's keys; both candidates are read in one round trip instead of two provider look-ups.
 */
export async function readAccessToken(kv: KeyValueStore, token: string): Promise<StoredToken | null> {
  const [at, cc] = await kv.mGet([artifactKey('AccessToken', token), artifactKey('ClientCredentials', token)]);
  const raw = at ?? cc;
  if (!raw) return null;
  const t = JSON.parse(raw) as StoredToken;
  return t.jti === token && t.exp > now() ? t : null;
}

/** Refresh tokens live in PostgreSQL (the provider's model); consumed or expired ones are not live. */
export async function readRefreshToken(provider: Provider, token: string): Promise<StoredToken | null> {
  const rt = await provider.RefreshToken.find(token);
  if (!rt || rt.isExpired || (rt as { consumed?: unknown }).consumed) return null;
  return {
    jti: rt.jti,
    kind: 'RefreshToken',
    exp: rt.exp!,
    iat: rt.iat!,
    clientId: rt.clientId!,
    accountId: rt.accountId,
    scope: rt.scope,
    grantId: rt.grantId,
  };
}
