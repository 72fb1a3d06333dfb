import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { z } from 'zod';
import type { Actor, AuditLog } from '../audit/service.js';
import type { AccountsService } from '../accounts/service.js';
import { errors } from '../http/errors.js';
import { OAuthClientEntity, type OAuthClient } from './entities.js';
import { hashClientSecret, newClientSecret } from './secrets.js';
import { ALL_SCOPES } from './scopes.js';
import type { ClientRows } from './client-rows.js';
import { checkOutboundUrl, type OutboundPolicy } from '../outbound/url-policy.js';

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:ietf:params:oauth:grant-type:token-exchange',
] as const;

export const createClientInput = z
  .object({
    /** null: a platform-wide resource server (operators only, through the CLI): introspection only. */
    orgId: z.string().nullable(),
    name: z.string().trim().min(1, 'name is required').max(200),
    redirectUris: z.array(z.url()).default([]),
    grantTypes: z.array(z.enum(GRANT_TYPES)).default(['authorization_code', 'refresh_token']),
    authMethod: z.enum(AUTH_METHODS).default('client_secret_basic'),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    jwksUri: z.url().optional(),
    scope: z.string().optional(),
    introspect: z.boolean().default(false),
  })
  .superRefine((v, ctx) => {
    if (v.orgId === null && (!v.introspect || v.grantTypes.some((g) => g !== 'client_credentials'))) {
      ctx.addIssue({ code: 'custom', path: ['orgId'], message: 'a platform-wide client is a resource server: introspection, and at most client_credentials' });
    }
    if (v.authMethod === 'private_key_jwt' && !v.jwks && !v.jwksUri) {
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'private_key_jwt needs --jwks-file or --jwks-uri' });
    }
    if (v.grantTypes.includes('authorization_code') && v.redirectUris.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'authorization_code needs at least one redirect URI' });
    }
    if (v.authMethod === 'none' && v.grantTypes.includes('client_credentials')) {
      ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'public clients (auth method none) cannot use client_credentials' });
    }
    for (const s of (v.scope ?? '').split(' ').filter(Boolean)) {
      if (!ALL_SCOPES.includes(s)) ctx.addIssue({ code: 'custom', path: ['scope'], message: `unknown scope "${s}"` });
    }
  });

export type CreateClientInput = z.input<typeof createClientInput>;

export const updateClientInput = z
  .object({
    name: z.string().trim().min(1, 'name is required').max(200).optional(),
    redirectUris: z.array(z.url({ message: 'each redirect URI must be an absolute URL' })).optional(),
    scope: z
      .string()
      .optional()
      .refine((s) => s === undefined || s.split(' ').filter(Boolean).every((x) => ALL_SCOPES.includes(x)), 'unknown scope'),
    introspect: z.boolean().optional(),
  })
  .strict();

export type UpdateClientInput = z.input<typeof updateClientInput>;

export interface ClientView {
  client_id: string;
  org_id: string | null;
  name: string;
  redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  scope: string;
  introspect: boolean;
  created_at: string;
}

export function clientView(c: OAuthClient): ClientView {
  const m = c.metadata as Record<string, any>;
  return {
    client_id: c.clientId,
    org_id: c.orgId,
    name: c.name,
    redirect_uris: m.redirect_uris ?? [],
    grant_types: m.grant_types ?? [],
    token_endpoint_auth_method: m.token_endpoint_auth_method,
    scope: m.scope ?? '',
    introspect: c.introspect,
    created_at: c.createdAt.toISOString(),
  };
}

/** Validates metadata the way the provider will when it loads the client. */
export type MetadataValidator = (metadata: Record<string, unknown>) => Promise<void>;

export class ClientsService {
  constructor(
    private readonly ds: DataSource,
    private readonly accounts: AccountsService,
    private readonly audit: AuditLog,
    private readonly validateMetadata: MetadataValidator,
    /** Told after a change, so every instance's client caches drop the client. */
    private readonly rows?: ClientRows,
    /** Told after a deletion: the client's grants and tokens end (oauth/consents.ts). */
    private readonly onDeleted?: (actor: Actor, orgId: string, clientId: string) => Promise<void>,
    /** A jwks_uri is fetched by the server itself: it must pass the outbound policy (SSRF). */
    private readonly outbound?: OutboundPolicy,
  ) {}

  async create(actor: Actor, raw: CreateClientInput): Promise<{ client: ClientView; clientSecret?: string }> {
    const parsed = createClientInput.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw errors.validation(issue.message, { field: issue.path.join('.') });
    }
    const input = parsed.data;
    if (input.orgId !== null) await this.accounts.getOrganization(input.orgId);
    const clientId = `fgc_${randomBytes(12).toString('base64url')}`;
    const needsSecret = input.authMethod === 'client_secret_basic' || input.authMethod === 'client_secret_post';
    const secret = needsSecret ? newClientSecret() : undefined;
    const responseTypes = input.grantTypes.includes('authorization_code') ? ['code'] : [];
    const metadata: Record<string, unknown> = {
      redirect_uris: input.redirectUris,
      grant_types: input.grantTypes,
      response_types: responseTypes,
      token_endpoint_auth_method: input.authMethod,
      scope: input.scope ?? defaultScope(input.grantTypes),
      ...(input.jwks && { jwks: input.jwks }),
      ...(input.jwksUri && { jwks_uri: input.jwksUri }),
      ...(input.authMethod === 'private_key_jwt' && { token_endpoint_auth_signing_alg: undefined }),
      ...(input.authMethod === 'none' && { application_type: isNative(input.redirectUris) ? 'native' : 'web' }),
    };
    delete metadata.token_endpoint_auth_signing_alg;
    try {
      if (input.jwksUri && this.outbound) await checkOutboundUrl(input.jwksUri, this.outbound, 'jwks_uri');
      await this.validateMetadata({ client_id: clientId, client_name: input.name, ...metadata, ...(secret && { client_secret: 'x'.repeat(43) }) });
    } catch (err) {
      const e = err as { error_description?: string; message?: string };
      throw errors.validation(`Invalid client metadata: ${e.error_description ?? e.message}`);
    }
    return this.ds.transaction(async (m) => {
      const row: OAuthClient = {
        clientId,
        orgId: input.orgId,
        name: input.name,
        metadata,
        secretHash: secret ? hashClientSecret(secret) : null,
        introspect: input.introspect,
        createdAt: new Date(),
        updatedAt: new Date(),
      };
      await m.getRepository(OAuthClientEntity).insert(row);
      await this.audit.record(actor, { orgId: input.orgId, action: 'oauth_client.created', targetType: 'oauth_client', targetId: clientId, details: { name: input.name, grant_types: input.grantTypes, auth_method: input.authMethod } }, m);
      return { client: clientView(row), clientSecret: secret };
    });
  }

  async list(orgId: string): Promise<ClientView[]> {
    await this.accounts.getOrganization(orgId);
    const rows = await this.ds.getRepository(OAuthClientEntity).find({ where: { orgId }, order: { createdAt: 'ASC' } });
    return rows.map(clientView);
  }

  async get(clientId: string): Promise<OAuthClient | null> {
    return this.ds.getRepository(OAuthClientEntity).findOneBy({ clientId });
  }

  /** The client if it belongs to the organization; 404 otherwise (never reveals other organizations' clients). */
  async getForOrg(orgId: string, clientId: string): Promise<OAuthClient> {
    const row = await this.get(clientId);
    if (!row || row.orgId !== orgId) throw errors.notFound(`OAuth app ${clientId} not found`);
    return row;
  }

  /** Renames, changes redirect URIs or allowed scopes, grants or withdraws the introspection permission. */
  async update(actor: Actor, orgId: string, clientId: string, raw: UpdateClientInput): Promise<ClientView> {
    const parsed = updateClientInput.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw errors.validation(issue.message, { field: issue.path.join('.') });
    }
    const input = parsed.data;
    const row = await this.getForOrg(orgId, clientId);
    const metadata = { ...row.metadata };
    if (input.redirectUris !== undefined) {
      if ((metadata.grant_types ?? []).includes('authorization_code') && input.redirectUris.length === 0) {
        throw errors.validation('authorization_code needs at least one redirect URI', { field: 'redirectUris' });
      }
      metadata.redirect_uris = input.redirectUris;
    }
    if (input.scope !== undefined) metadata.scope = input.scope;
    const name = input.name ?? row.name;
    try {
      await this.validateMetadata({ client_id: clientId, client_name: name, ...metadata, ...(row.secretHash && { client_secret: 'x'.repeat(43) }) });
    } catch (err) {
      const e = err as { error_description?: string; message?: string };
      throw errors.validation(`Invalid client metadata: ${e.error_description ?? e.message}`);
    }
    const next: OAuthClient = { ...row, name, metadata, introspect: input.introspect ?? row.introspect, updatedAt: new Date() };
    const changed = Object.keys(input).filter((k) => (input as Record<string, unknown>)[k] !== undefined);
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthClientEntity).update({ clientId }, { name: next.name, metadata: next.metadata, introspect: next.introspect, updatedAt: next.updatedAt });
      await this.audit.record(actor, { orgId, action: 'oauth_client.updated', targetType: 'oauth_client', targetId: clientId, details: { name: next.name, changed } }, m);
    });
    await this.changed(clientId);
    return clientView(next);
  }

  /** A new client secret, shown once; the old one stops working at once. */
  async rotateSecret(actor: Actor, orgId: string, clientId: string): Promise<{ client: ClientView; clientSecret: string }> {
    const row = await this.getForOrg(orgId, clientId);
    if (!row.secretHash) throw errors.validation('This app does not use a client secret (public or private_key_jwt client)');
    const secret = newClientSecret();
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthClientEntity).update({ clientId }, { secretHash: hashClientSecret(secret), updatedAt: new Date() });
      await this.audit.record(actor, { orgId, action: 'oauth_client.secret_rotated', targetType: 'oauth_client', targetId: clientId, details: { name: row.name } }, m);
    });
    await this.changed(clientId);
    return { client: clientView(row), clientSecret: secret };
  }

  /** Deletes the client: it can no longer authenticate, and tokens issued to it stop being accepted. */
  async delete(actor: Actor, orgId: string, clientId: string): Promise<void> {
    const row = await this.getForOrg(orgId, clientId);
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthClientEntity).delete({ clientId });
      await this.audit.record(actor, { orgId, action: 'oauth_client.deleted', targetType: 'oauth_client', targetId: clientId, details: { name: row.name } }, m);
    });
    await this.changed(clientId);
    await this.onDeleted?.(actor, orgId, clientId);
  }

  private async changed(clientId: string): Promise<void> {
    await this.rows?.changed(clientId);
  }
}

function defaultScope(grantTypes: string[]): string {
  const platform = 'workflows:read workflows:write workflows:execute runs:read connections:read connections:write';
  return grantTypes.includes('authorization_code') ? `openid profile email offline_access ${platform}` : platform;
}

function isNative(uris: string[]): boolean {
  return uris.some((u) => !/^https?:/.test(u) || /^http:\/\/(localhost|127\.0\.0\.1)/.test(u));
}
