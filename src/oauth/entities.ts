import { EntitySchema } from 'typeorm';

/** A registered OAuth client. PostgreSQL: clients are configuration and must never vanish. */
export interface OAuthClient {
  clientId: string;
  /** null: a platform-wide client registered by an operator (a resource server of every organization). */
  orgId: string | null;
  name: string;
  /** oidc-provider client metadata, without the secret. */
  metadata: Record<string, any>;
  /** SHA-256 (hex) of the client secret; the secret itself is shown once and never stored. */
  secretHash: string | null;
  /** May call the introspection endpoint (resource servers). */
  introspect: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export const OAuthClientEntity = new EntitySchema<OAuthClient>({
  name: 'OAuthClient',
  tableName: 'oauth_clients',
  columns: {
    clientId: { type: 'text', primary: true, name: 'client_id' },
    orgId: { type: 'uuid', name: 'org_id', nullable: true },
    name: { type: 'text' },
    metadata: { type: 'jsonb' },
    secretHash: { type: 'text', name: 'secret_hash', nullable: true },
    introspect: { type: 'boolean', default: false },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
});

/**
 * Durable oidc-provider artifacts (Grant, Session, RefreshToken, ...), one table for every model as
 * Logto does: the payload is the provider's own object, the indexed columns serve its lookups.
 */
export interface OidcArtifact {
  model: string;
  id: string;
  payload: Record<string, any>;
  grantId: string | null;
  uid: string | null;
  userCode: string | null;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

export const OidcArtifactEntity = new EntitySchema<OidcArtifact>({
  name: 'OidcArtifact',
  tableName: 'oidc_artifacts',
  columns: {
    model: { type: 'text', primary: true },
    id: { type: 'text', primary: true },
    payload: { type: 'jsonb' },
    grantId: { type: 'text', name: 'grant_id', nullable: true },
    uid: { type: 'text', nullable: true },
    userCode: { type: 'text', name: 'user_code', nullable: true },
    expiresAt: { type: 'timestamptz', name: 'expires_at', nullable: true },
    consumedAt: { type: 'timestamptz', name: 'consumed_at', nullable: true },
  },
});

/** Which organization a user let a client act for, per grant. PostgreSQL: outlives sessions. */
export interface OAuthConsent {
  grantId: string;
  userId: string;
  clientId: string;
  orgId: string;
  scope: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export const OAuthConsentEntity = new EntitySchema<OAuthConsent>({
  name: 'OAuthConsent',
  tableName: 'oauth_consents',
  columns: {
    grantId: { type: 'text', primary: true, name: 'grant_id' },
    userId: { type: 'uuid', name: 'user_id' },
    clientId: { type: 'text', name: 'client_id' },
    orgId: { type: 'uuid', name: 'org_id' },
    scope: { type: 'text' },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
    revokedAt: { type: 'timestamptz', name: 'revoked_at', nullable: true },
  },
});
