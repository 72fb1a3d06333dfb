import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { z } from 'zod';
import type { Actor, AuditLog } from '../audit/service.js';
import type { AccountsService } from '../accounts/service.js';
import { AppError, errors, issuesDetails, type ValidationIssue } from '../http/errors.js';
import { parse } from '../http/guard.js';
import { paginate, type Page, type PageRequest } from '../http/pagination.js';
import { OAuthClientEntity, type OAuthClient } from './entities.js';
import { currentSecretHash, hashClientSecret, newClientSecret, previousSecretUntil, secretVerifier } from './secrets.js';
import { ALL_SCOPES } from './scopes.js';
import type { ClientRows } from './client-rows.js';
import { checkOutboundUrl, UnsafeUrlError, type OutboundPolicy } from '../outbound/url-policy.js';

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:ietf:params:oauth:grant-type:token-exchange',
] as const;
/** Flowgate's shorthand for the usual registrations; each sets defaults for grant types and authentication. */
export const CLIENT_KINDS = ['web', 'public', 'service'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];
export const MAX_SECRET_GRACE_SECONDS = 30 * 86400;

const SECRET_METHODS = new Set<string>(['client_secret_basic', 'client_secret_post']);

// Client metadata under the names RFC 7591 §2 gives them, plus Flowgate's `kind` and `introspection`.
const fields = {
  client_name: z.string().trim().min(1, 'client_name is required').max(200),
  redirect_uris: z.array(z.url({ message: 'each redirect URI must be an absolute URL' }).max(2000)).max(20),
  grant_types: z.array(z.enum(GRANT_TYPES)).min(1, 'at least one grant type is required').max(GRANT_TYPES.length),
  token_endpoint_auth_method: z.enum(AUTH_METHODS),
  scope: z.string().max(2000).meta({ description: 'Space-separated scopes the client may request (RFC 7591 §2)' }),
  jwks: z
    .object({ keys: z.array(z.record(z.string(), z.unknown())).min(1, 'jwks needs at least one key').max(20) })
    .meta({ description: 'The client\'s public keys for private_key_jwt (RFC 7591 §2), by value' }),
  jwks_uri: z.url({ message: 'jwks_uri must be an absolute URL' }).max(2000).meta({ description: 'Where the client publishes its public keys (RFC 7591 §2)' }),
  introspection: z.boolean().meta({ description: 'Flowgate: the client is a resource server and may call the introspection endpoint' }),
};

/** A registration (POST /api/v1/clients, `clients create`, the dashboard's form): parsed, then checked as a whole. */
export const clientRegistrationInput = z
  .strictObject({
    client_name: fields.client_name,
    kind: z.enum(CLIENT_KINDS).optional().meta({
      description:
        'Flowgate: `web` (authorization_code + refresh_token, client_secret_basic), `public` (the same with auth method none and PKCE), `service` (client_credentials; private_key_jwt when jwks or jwks_uri is given). Explicit fields win.',
    }),
    redirect_uris: fields.redirect_uris.optional(),
    grant_types: fields.grant_types.optional(),
    token_endpoint_auth_method: fields.token_endpoint_auth_method.optional(),
    scope: fields.scope.optional(),
    jwks: fields.jwks.optional(),
    jwks_uri: fields.jwks_uri.optional(),
    introspection: fields.introspection.optional(),
  })
  .transform((v): ClientRegistration => {
    const service = v.kind === 'service';
    const keys = v.jwks !== undefined || v.jwks_uri !== undefined;
    return {
      client_name: v.client_name,
      redirect_uris: v.redirect_uris ?? [],
      grant_types: v.grant_types ?? (service ? ['client_credentials'] : ['authorization_code', 'refresh_token']),
      token_endpoint_auth_method: v.token_endpoint_auth_method ?? (v.kind === 'public' ? 'none' : service && keys ? 'private_key_jwt' : 'client_secret_basic'),
      ...(v.scope !== undefined && { scope: v.scope }),
      ...(v.jwks && { jwks: v.jwks }),
      ...(v.jwks_uri && { jwks_uri: v.jwks_uri }),
      introspection: v.introspection ?? false,
    };
  })
  .superRefine((v, ctx) => {
    for (const issue of metadataIssues(v)) ctx.addIssue({ code: 'custom', path: issue.path ? issue.path.split('.') : [], message: issue.message });
  })
  .meta({ id: 'ClientRegistration' });

/** A change (PATCH /api/v1/clients/{client_id}, `clients update`): the fields given replace the stored ones. */
export const clientUpdateInput = z
  .strictObject({
    client_name: fields.client_name.optional(),
    redirect_uris: fields.redirect_uris.optional(),
    grant_types: fields.grant_types.optional(),
    token_endpoint_auth_method: fields.token_endpoint_auth_method.optional(),
    scope: fields.scope.optional(),
    jwks: fields.jwks.nullable().optional().meta({ description: 'null removes it' }),
    jwks_uri: fields.jwks_uri.nullable().optional().meta({ description: 'null removes it' }),
    introspection: fields.introspection.optional(),
  })
  .meta({ id: 'ClientUpdate' });

export const rotateSecretInput = z
  .strictObject({
    grace_seconds: z
      .number({ error: 'grace_seconds must be a number' })
      .int()
      .min(0)
      .max(MAX_SECRET_GRACE_SECONDS)
      .optional()
      .meta({ description: `How long the previous secret keeps working (0-${MAX_SECRET_GRACE_SECONDS} seconds; default 0: it stops now)` }),
  })
  .meta({ id: 'ClientSecretRotation' });

export interface ClientRegistration {
  client_name: string;
  redirect_uris: string[];
  grant_types: (typeof GRANT_TYPES)[number][];
  token_endpoint_auth_method: (typeof AUTH_METHODS)[number];
  scope?: string;
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  introspection: boolean;
}
export type ClientUpdate = z.output<typeof clientUpdateInput>;

/**
 * The rules a client's metadata obeys as a whole, for registrations and for changes alike (checked
 * on the merged result). Field paths are the RFC 7591 names.
 */
export function metadataIssues(m: { redirect_uris: string[]; grant_types: readonly string[]; token_endpoint_auth_method: string; scope?: string; jwks?: unknown; jwks_uri?: string }): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (m.token_endpoint_auth_method === 'private_key_jwt' && !m.jwks && !m.jwks_uri) out.push({ path: 'jwks', message: 'private_key_jwt needs jwks or jwks_uri' });
  // RFC 7591 §2: "The jwks_uri and jwks parameters MUST NOT both be present in the same request or response."
  if (m.jwks && m.jwks_uri) out.push({ path: 'jwks_uri', message: 'give either jwks or jwks_uri, not both' });
  if (m.grant_types.includes('authorization_code') && m.redirect_uris.length === 0) out.push({ path: 'redirect_uris', message: 'authorization_code needs at least one redirect URI' });
  if (m.token_endpoint_auth_method === 'none' && m.grant_types.includes('client_credentials')) {
    out.push({ path: 'grant_types', message: 'public clients (auth method none) cannot use client_credentials' });
  }
  for (const s of (m.scope ?? '').split(' ').filter(Boolean)) {
    if (!ALL_SCOPES.includes(s)) out.push({ path: 'scope', message: `unknown scope "${s}"` });
  }
  return out;
}

/**
 * In-process callers (first-start seed, benchmark and test fixtures) in the older camelCase form;
 * mapped onto a registration and parsed by the same schema as every other caller.
 */
export interface CreateClientInput {
  /** null: a platform-wide resource server (operators only, through the CLI): introspection only. */
  orgId: string | null;
  name: string;
  redirectUris?: string[];
  grantTypes?: (typeof GRANT_TYPES)[number][];
  authMethod?: (typeof AUTH_METHODS)[number];
  jwks?: { keys: Record<string, unknown>[] };
  jwksUri?: string;
  scope?: string;
  introspect?: boolean;
}

export interface ClientView {
  client_id: string;
  client_name: string;
  /** null: a platform-wide resource server. */
  org_id: string | null;
  kind: ClientKind;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: string;
  scope: string;
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  introspection: boolean;
  /** RFC 7591 §3.2.1: seconds since the epoch. */
  client_id_issued_at: number;
  /** Until when the secret replaced by the last rotation still works; null when it no longer does. */
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export function clientView(c: OAuthClient): ClientView {
  const m = c.metadata as Record<string, any>;
  const grants: string[] = m.grant_types ?? [];
  const until = c.secretHash ? previousSecretUntil(c.secretHash) : null;
  return {
    client_id: c.clientId,
    client_name: c.name,
    org_id: c.orgId,
    kind: m.token_endpoint_auth_method === 'none' ? 'public' : grants.includes('authorization_code') ? 'web' : 'service',
    redirect_uris: m.redirect_uris ?? [],
    grant_types: grants,
    response_types: m.response_types ?? [],
    token_endpoint_auth_method: m.token_endpoint_auth_method,
    scope: m.scope ?? '',
    ...(m.jwks && { jwks: m.jwks }),
    ...(m.jwks_uri && { jwks_uri: m.jwks_uri }),
    introspection: c.introspect,
    client_id_issued_at: Math.floor(c.createdAt.getTime() / 1000),
    previous_secret_expires_at: until?.toISOString() ?? null,
    created_at: c.createdAt.toISOString(),
    updated_at: (c.updatedAt ?? c.createdAt).toISOString(),
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
    private readonly onDeleted?: (actor: Actor, orgId: string | null, clientId: string) => Promise<void>,
    /** A jwks_uri is fetched by the server itself: it must pass the outbound policy (SSRF). */
    private readonly outbound?: OutboundPolicy,
  ) {}

  /** See CreateClientInput: the camelCase form, parsed by the registration schema. */
  async create(actor: Actor, raw: CreateClientInput): Promise<{ client: ClientView; clientSecret?: string }> {
    const reg = parse(clientRegistrationInput, {
      client_name: raw.name,
      ...(raw.redirectUris && { redirect_uris: raw.redirectUris }),
      ...(raw.grantTypes && { grant_types: raw.grantTypes }),
      ...(raw.authMethod && { token_endpoint_auth_method: raw.authMethod }),
      ...(raw.scope !== undefined && { scope: raw.scope }),
      ...(raw.jwks && { jwks: raw.jwks }),
      ...(raw.jwksUri && { jwks_uri: raw.jwksUri }),
      ...(raw.introspect !== undefined && { introspection: raw.introspect }),
    });
    return this.register(actor, raw.orgId, reg);
  }

  /**
   * Registers a client (input parsed by clientRegistrationInput). The secret is in the answer only.
   * `orgId` null: a platform-wide resource server, which the operator's CLI alone registers.
   */
  async register(actor: Actor, orgId: string | null, input: ClientRegistration): Promise<{ client: ClientView; clientSecret?: string }> {
    if (orgId !== null) await this.accounts.getOrganization(orgId);
    else if (!input.introspection || input.grant_types.some((g) => g !== 'client_credentials')) {
      throw errors.validation('a platform-wide client is a resource server: introspection, and at most client_credentials', 'introspection');
    }
    const clientId = `fgc_${randomBytes(12).toString('base64url')}`;
    const secret = SECRET_METHODS.has(input.token_endpoint_auth_method) ? newClientSecret() : undefined;
    const metadata = providerMetadata(input);
    await this.checkWithProvider(clientId, input.client_name, metadata, !!secret);
    return this.ds.transaction(async (m) => {
      const now = new Date();
      const row: OAuthClient = {
        clientId,
        orgId,
        name: input.client_name,
        metadata,
        secretHash: secret ? hashClientSecret(secret) : null,
        introspect: input.introspection,
        createdAt: now,
        updatedAt: now,
      };
      await m.getRepository(OAuthClientEntity).insert(row);
      await this.audit.record(
        actor,
        {
          orgId,
          action: 'oauth_client.created',
          targetType: 'oauth_client',
          targetId: clientId,
          details: { name: input.client_name, grant_types: input.grant_types, auth_method: input.token_endpoint_auth_method, introspection: input.introspection },
        },
        m,
      );
      return { client: clientView(row), clientSecret: secret };
    });
  }

  /** Every client of an organization, oldest first. */
  async list(orgId: string): Promise<ClientView[]> {
    await this.accounts.getOrganization(orgId);
    const rows = await this.ds.getRepository(OAuthClientEntity).find({ where: { orgId }, order: { createdAt: 'ASC', clientId: 'ASC' } });
    return rows.map(clientView);
  }

  /** One page of the organization's clients, oldest first; `kind` filters. */
  async page(orgId: string, req: PageRequest & { kind?: ClientKind }): Promise<Page<ClientView>> {
    const all = (await this.list(orgId)).filter((c) => !req.kind || c.kind === req.kind);
    return paginate('clients', all, req, (c) => [c.created_at, c.client_id]);
  }

  async get(clientId: string): Promise<OAuthClient | null> {
    if (typeof clientId !== 'string' || clientId.length > 200) return null;
    return this.ds.getRepository(OAuthClientEntity).findOneBy({ clientId });
  }

  /** The client if it belongs to the organization (null: a platform-wide client); 404 otherwise (never reveals other organizations' clients). */
  async getForOrg(orgId: string | null, clientId: string): Promise<OAuthClient> {
    const row = await this.get(clientId);
    if (!row || row.orgId !== orgId) throw errors.notFound(`OAuth client ${clientId} not found`);
    return row;
  }

  /**
   * Changes a client's metadata: the given fields replace the stored ones and the result obeys the
   * same rules as a registration. The authentication method moves only between the two secret
   * methods: a client that gains or loses a secret is a new registration.
   */
  async update(actor: Actor, orgId: string | null, clientId: string, input: ClientUpdate): Promise<ClientView> {
    const row = await this.getForOrg(orgId, clientId);
    const stored = row.metadata as Record<string, any>;
    const method = input.token_endpoint_auth_method ?? stored.token_endpoint_auth_method;
    if (method !== stored.token_endpoint_auth_method && !(SECRET_METHODS.has(method) && SECRET_METHODS.has(stored.token_endpoint_auth_method))) {
      const message = `token_endpoint_auth_method can change only between client_secret_basic and client_secret_post; register a new client for ${method}`;
      throw new AppError(400, 'VALIDATION_ERROR', message, issuesDetails([{ path: 'token_endpoint_auth_method', message }]));
    }
    const next: ClientRegistration = {
      client_name: input.client_name ?? row.name,
      redirect_uris: input.redirect_uris ?? stored.redirect_uris ?? [],
      grant_types: input.grant_types ?? stored.grant_types ?? [],
      token_endpoint_auth_method: method,
      scope: input.scope ?? stored.scope,
      ...((input.jwks === undefined ? stored.jwks : input.jwks) && { jwks: input.jwks ?? stored.jwks }),
      ...((input.jwks_uri === undefined ? stored.jwks_uri : input.jwks_uri) && { jwks_uri: input.jwks_uri ?? stored.jwks_uri }),
      introspection: input.introspection ?? row.introspect,
    };
    const issues = metadataIssues(next);
    if (issues.length) throw errors.invalid(issues);
    const metadata = providerMetadata(next);
    await this.checkWithProvider(clientId, next.client_name, metadata, !!row.secretHash);
    const updated: OAuthClient = { ...row, name: next.client_name, metadata, introspect: next.introspection, updatedAt: new Date() };
    const changed = Object.keys(input).filter((k) => (input as Record<string, unknown>)[k] !== undefined);
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthClientEntity).update({ clientId }, { name: updated.name, metadata: metadata as Record<string, any>, introspect: updated.introspect, updatedAt: updated.updatedAt });
      await this.audit.record(actor, { orgId, action: 'oauth_client.updated', targetType: 'oauth_client', targetId: clientId, details: { name: updated.name, changed } }, m);
    });
    await this.changed(clientId);
    return clientView(updated);
  }

  /**
   * A new client secret, shown once. The previous one keeps working for `graceSeconds` (0: it stops
   * now), so a deployment can roll the secret without downtime; a previous secret still in grace from
   * an earlier rotation stops now.
   */
  async rotateSecret(actor: Actor, orgId: string | null, clientId: string, graceSeconds = 0): Promise<{ client: ClientView; clientSecret: string }> {
    const row = await this.getForOrg(orgId, clientId);
    if (!row.secretHash) {
      throw new AppError(409, 'CONFLICT', 'This client does not use a client secret (public or private_key_jwt client)');
    }
    const grace = Math.max(0, Math.min(Math.floor(graceSeconds), MAX_SECRET_GRACE_SECONDS));
    const secret = newClientSecret();
    const now = new Date();
    const until = new Date(now.getTime() + grace * 1000);
    const verifier = secretVerifier(hashClientSecret(secret), grace > 0 ? { hash: currentSecretHash(row.secretHash), until } : undefined);
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthClientEntity).update({ clientId }, { secretHash: verifier, updatedAt: now });
      await this.audit.record(
        actor,
        { orgId, action: 'oauth_client.secret_rotated', targetType: 'oauth_client', targetId: clientId, details: { name: row.name, grace_seconds: grace, previous_secret_expires_at: grace > 0 ? until.toISOString() : null } },
        m,
      );
    });
    await this.changed(clientId);
    return { client: clientView({ ...row, secretHash: verifier, updatedAt: now }), clientSecret: secret };
  }

  /** Deletes the client: it can no longer authenticate, and tokens issued to it stop being accepted. */
  async delete(actor: Actor, orgId: string | null, clientId: string): Promise<void> {
    const row = await this.getForOrg(orgId, clientId);
    await this.ds.transaction(async (m) => {
      await m.getRepository(OAuthClientEntity).delete({ clientId });
      await this.audit.record(actor, { orgId, action: 'oauth_client.deleted', targetType: 'oauth_client', targetId: clientId, details: { name: row.name } }, m);
    });
    await this.changed(clientId);
    await this.onDeleted?.(actor, orgId, clientId);
  }

  private async checkWithProvider(clientId: string, name: string, metadata: Record<string, unknown>, hasSecret: boolean): Promise<void> {
    if (typeof metadata.jwks_uri === 'string' && this.outbound) {
      try {
        await checkOutboundUrl(metadata.jwks_uri, this.outbound, 'jwks_uri');
      } catch (err) {
        if (err instanceof UnsafeUrlError) throw errors.validation(err.message, 'jwks_uri');
        throw err;
      }
    }
    try {
      await this.validateMetadata({ client_id: clientId, client_name: name, ...metadata, ...(hasSecret && { client_secret: 'x'.repeat(43) }) });
    } catch (err) {
      const e = err as { error_description?: string; message?: string };
      throw errors.validation(`Invalid client metadata: ${e.error_description ?? e.message}`);
    }
  }

  private async changed(clientId: string): Promise<void> {
    await this.rows?.changed(clientId);
  }
}

/** The document oidc-provider loads (without the secret, which lives in its own column). */
function providerMetadata(input: ClientRegistration): Record<string, unknown> {
  return {
    redirect_uris: input.redirect_uris,
    grant_types: input.grant_types,
    response_types: input.grant_types.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: input.token_endpoint_auth_method,
    scope: input.scope ?? defaultScope(input.grant_types),
    ...(input.jwks && { jwks: input.jwks }),
    ...(input.jwks_uri && { jwks_uri: input.jwks_uri }),
    ...(input.token_endpoint_auth_method === 'none' && { application_type: isNative(input.redirect_uris) ? 'native' : 'web' }),
  };
}

function defaultScope(grantTypes: readonly string[]): string {
  const platform = 'workflows:read workflows:write workflows:execute runs:read connections:read connections:write';
  return grantTypes.includes('authorization_code') ? `openid profile email offline_access ${platform}` : platform;
}

function isNative(uris: string[]): boolean {
  return uris.some((u) => !/^https?:/.test(u) || /^http:\/\/(localhost|127\.0\.0\.1)/.test(u));
}
