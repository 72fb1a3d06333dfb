import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { IsNull, type DataSource, type EntityManager } from 'typeorm';
import type { Config } from '../config/schema.js';
import type { Actor, AuditLog } from '../audit/service.js';
import type { AccountsService } from '../accounts/service.js';
import { isUuid } from '../accounts/service.js';
import { AppError, errors } from '../http/errors.js';
import { isOrgAdmin, type Principal } from '../auth/principal.js';
import { ApiKeyEntity, type ApiKey } from './entities.js';
import { displayKey, generateApiKey, maskedKey, parseApiKey } from '../credentials/api-key-format.js';
import { hashApiKey } from '../credentials/api-key-hash.js';
import { API_KEY_SCOPES, normalizeScopes, PRESET_NAMES, PRESETS } from './presets.js';
import type { LastUsedTracker } from './last-used.js';

export const MAX_GRACE_SECONDS = 30 * 86400;

const scopeList = z
  .union([z.array(z.string()), z.string().transform((s) => s.split(/[\s,]+/).filter(Boolean))])
  .pipe(z.array(z.enum(API_KEY_SCOPES as [string, ...string[]], { message: `unknown scope; allowed: ${API_KEY_SCOPES.join(', ')}` })).min(1, 'at least one scope is required'));

export const createApiKeyInput = z
  .object({
    name: z.string().trim().min(1, 'name is required').max(200),
    scopes: scopeList.optional(),
    preset: z.enum(PRESET_NAMES as [string, ...string[]], { message: `preset must be one of ${PRESET_NAMES.join(', ')}` }).optional(),
    team_id: z.string().refine(isUuid, 'team_id must be a UUID').nullish(),
    workflow_id: z.string().trim().min(1).max(200).regex(/^[\w.:-]+$/, 'workflow_id may hold letters, digits and . _ : -').nullish(),
    expires_at: z.iso.datetime({ offset: true, message: 'expires_at must be an ISO 8601 date-time' }).nullish(),
  })
  .strict()
  .refine((v) => (v.scopes === undefined) !== (v.preset === undefined), { message: 'give either scopes or preset', path: ['scopes'] });

export const updateApiKeyInput = z
  .object({
    name: z.string().trim().min(1, 'name is required').max(200).optional(),
    scopes: scopeList.optional(),
  })
  .strict();

export const rollApiKeyInput = z
  .object({ grace_seconds: z.number({ error: 'grace_seconds must be a number' }).int().min(0).max(MAX_GRACE_SECONDS).optional() })
  .strict();

export type CreateApiKeyInput = z.input<typeof createApiKeyInput>;
export type UpdateApiKeyInput = z.input<typeof updateApiKeyInput>;

/**
 * Who asks. `principal` absent = the operator's CLI (trusted, no ownership rules); present = a
 * caller of the management API, limited by its organization, role and (for delegated credentials)
 * its own scopes and restrictions.
 */
export interface Caller {
  actor: Actor;
  principal?: Principal;
}

export interface ApiKeyView {
  id: string;
  name: string;
  /** `sk-AbCd…wxyz` for keys the caller may manage; fully masked otherwise (seed 001). */
  display: string;
  masked: boolean;
  org_id: string;
  team_id: string | null;
  workflow_id: string | null;
  scopes: string[];
  status: 'active' | 'expired';
  created_by: string | null;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  /** Until when the secret replaced by the last roll still works. */
  previous_secret_expires_at: string | null;
  rate_limit: Record<string, unknown> | null;
}

/** Drops a key's cached verifications (and what derives from them) on every instance. */
export interface KeyInvalidator {
  invalidate(keyId: string): Promise<void>;
}

export class ApiKeysService {
  constructor(
    private readonly ds: DataSource,
    private readonly config: Config,
    private readonly audit: AuditLog,
    private readonly accounts: AccountsService,
    private readonly verifier: KeyInvalidator,
    private readonly lastUsed: LastUsedTracker,
  ) {}

  private repo(m: EntityManager = this.ds.manager) {
    return m.getRepository(ApiKeyEntity);
  }

  /** Issues a key. The full key is in the answer once and never again. */
  async create(caller: Caller, orgId: string, raw: CreateApiKeyInput): Promise<{ key: string; apiKey: ApiKeyView }> {
    const input = validate(createApiKeyInput, raw);
    const p = caller.principal;
    if (p && p.orgId !== orgId) throw errors.notFound(`Organization ${orgId} not found`);
    const org = await this.accounts.getOrganization(orgId);
    const scopes = normalizeScopes(input.preset ? PRESETS[input.preset as keyof typeof PRESETS] : input.scopes!);
    let teamId = input.team_id ?? null;
    let workflowId = input.workflow_id ?? null;
    let expiresAt = input.expires_at ? new Date(input.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw errors.validation('expires_at must be in the future', { field: 'expires_at' });

    // A delegated credential (key or token) cannot mint more than it holds: its own workflow, team
    // and expiry are the defaults, and the key must stay within them (assertWithinCredential).
    if (p && p.kind !== 'session') {
      if (p.workflowId) workflowId ??= p.workflowId;
      if (p.teamId && p.kind === 'api_key') teamId ??= p.teamId;
      if (p.expiresAt) expiresAt ??= p.expiresAt;
      assertWithinCredential(p, { scopes, teamId, workflowId, expiresAt }, 'create');
    }
    if (teamId) await this.accounts.getTeam(orgId, teamId);

    const key = generateApiKey(this.config.apiKeys.prefix);
    const parsed = parseApiKey(key)!;
    const now = new Date();
    const row: ApiKey = {
      id: randomUUID(),
      orgId,
      teamId,
      workflowId,
      name: input.name,
      scopes,
      keyHash: hashApiKey(this.config.apiKeys.pepper, key),
      keyStart: parsed.start,
      keyLast4: parsed.last4,
      previousKeyHash: null,
      previousExpiresAt: null,
      createdBy: p?.userId ?? null,
      createdAt: now,
      updatedAt: now,
      expiresAt,
      lastUsedAt: null,
      revokedAt: null,
      rateLimit: null,
    };
    await this.ds.transaction(async (m) => {
      // Serialize creations per organization so two concurrent requests cannot both pass the cap.
      await m.query('SELECT id FROM organizations WHERE id = $1 FOR UPDATE', [orgId]);
      const limit = this.config.plans[org.plan]?.maxApiKeys ?? null;
      if (limit !== null) {
        const [{ n }] = await m.query(
          `SELECT count(*)::int AS n FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
          [orgId],
        );
        if (n >= limit) {
          throw new AppError(403, 'KEY_LIMIT_REACHED', `API key limit reached: the ${org.plan} plan allows ${limit} active keys. Delete a key or upgrade the plan.`, {
            limit,
            plan: org.plan,
          });
        }
      }
      await this.repo(m).insert(row);
      await this.audit.record(
        caller.actor,
        {
          orgId,
          action: 'api_key.created',
          targetType: 'api_key',
          targetId: row.id,
          details: { name: row.name, scopes, team_id: teamId, workflow_id: workflowId, expires_at: expiresAt?.toISOString() ?? null, ...(input.preset && { preset: input.preset }) },
        },
        m,
      );
    });
    return { key, apiKey: this.view(row, p) };
  }

  /** Active (not deleted) keys of an organization, newest first; expired ones included, marked. */
  async list(caller: Caller, orgId: string): Promise<ApiKeyView[]> {
    const p = caller.principal;
    if (p && p.orgId !== orgId) throw errors.notFound(`Organization ${orgId} not found`);
    await this.accounts.getOrganization(orgId);
    const rows = await this.repo().find({ where: { orgId, revokedAt: IsNull() }, order: { createdAt: 'DESC' } });
    return rows.map((r) => this.view(r, p));
  }

  async get(caller: Caller, id: string): Promise<ApiKeyView> {
    return this.view(await this.find(caller, id), caller.principal);
  }

  /** Renames and/or narrows scopes. Never widens: a wider key is a new key. */
  async update(caller: Caller, id: string, raw: UpdateApiKeyInput): Promise<ApiKeyView> {
    const input = validate(updateApiKeyInput, raw);
    const row = await this.findManageable(caller, id);
    const changes: Record<string, unknown> = {};
    const patch: Partial<ApiKey> = {};
    if (input.name !== undefined && input.name !== row.name) {
      changes.name = { from: row.name, to: input.name };
      patch.name = input.name;
    }
    if (input.scopes !== undefined) {
      const next = normalizeScopes(input.scopes);
      const added = next.filter((s) => !row.scopes.includes(s));
      if (added.length) {
        throw new AppError(403, 'SCOPE_WIDENING_NOT_ALLOWED', `PATCH can only narrow a key's scopes; create a new key for: ${added.join(', ')}`, { scopes: added });
      }
      if (next.length !== row.scopes.length) {
        changes.scopes = { from: row.scopes, to: next };
        patch.scopes = next;
      }
    }
    if (Object.keys(patch).length === 0) return this.view(row, caller.principal);
    patch.updatedAt = new Date();
    await this.ds.transaction(async (m) => {
      await this.repo(m).update({ id }, patch);
      await this.audit.record(caller.actor, { orgId: row.orgId, action: 'api_key.updated', targetType: 'api_key', targetId: id, details: changes }, m);
    });
    await this.verifier.invalidate(id);
    return this.view({ ...row, ...patch }, caller.principal);
  }

  /**
   * A new secret for the same key record. The old secret keeps working for `graceSeconds`
   * (default from config; 0 = it dies now); an older secret still in grace from a previous roll
   * dies now.
   */
  async roll(caller: Caller, id: string, graceSeconds?: number): Promise<{ key: string; apiKey: ApiKeyView }> {
    const grace = validate(rollApiKeyInput, { grace_seconds: graceSeconds }).grace_seconds ?? this.config.apiKeys.defaultRollGraceSeconds;
    const row = await this.findManageable(caller, id);
    // Rolling hands out the key's new secret: a delegated credential may only roll keys it could have minted.
    if (caller.principal && caller.principal.kind !== 'session') assertWithinCredential(caller.principal, row, 'roll');
    if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) throw errors.conflict('This API key has expired; create a new one');
    const key = generateApiKey(this.config.apiKeys.prefix);
    const parsed = parseApiKey(key)!;
    const now = new Date();
    const patch: Partial<ApiKey> = {
      keyHash: hashApiKey(this.config.apiKeys.pepper, key),
      keyStart: parsed.start,
      keyLast4: parsed.last4,
      previousKeyHash: grace > 0 ? row.keyHash : null,
      previousExpiresAt: grace > 0 ? new Date(now.getTime() + grace * 1000) : null,
      updatedAt: now,
    };
    await this.ds.transaction(async (m) => {
      await this.repo(m).update({ id }, patch);
      await this.audit.record(
        caller.actor,
        { orgId: row.orgId, action: 'api_key.rolled', targetType: 'api_key', targetId: id, details: { grace_seconds: grace, previous_secret_expires_at: patch.previousExpiresAt?.toISOString() ?? null } },
        m,
      );
    });
    await this.verifier.invalidate(id);
    return { key, apiKey: this.view({ ...row, ...patch }, caller.principal) };
  }

  /** Delete = revoke: immediate (every instance, via invalidation) and final (seed 001). */
  async revoke(caller: Caller, id: string): Promise<void> {
    const row = await this.findManageable(caller, id);
    await this.ds.transaction(async (m) => {
      await this.repo(m).update({ id }, { revokedAt: new Date(), previousKeyHash: null, previousExpiresAt: null, updatedAt: new Date() });
      await this.audit.record(caller.actor, { orgId: row.orgId, action: 'api_key.revoked', targetType: 'api_key', targetId: id, details: { name: row.name } }, m);
    });
    await this.verifier.invalidate(id);
  }

  /** The key if it exists, is not deleted and belongs to the caller's organization (404 otherwise). */
  private async find(caller: Caller, id: string): Promise<ApiKey> {
    const row = isUuid(id) ? await this.repo().findOneBy({ id }) : null;
    if (!row || row.revokedAt || (caller.principal && caller.principal.orgId !== row.orgId)) throw errors.notFound(`API key ${id} not found`);
    return row;
  }

  private async findManageable(caller: Caller, id: string): Promise<ApiKey> {
    const row = await this.find(caller, id);
    if (!canManage(caller.principal, row)) throw new AppError(403, 'FORBIDDEN', 'Members can manage only their own API keys');
    return row;
  }

  private view(r: ApiKey, p: Principal | undefined): ApiKeyView {
    const mine = canManage(p, r);
    const pending = this.lastUsed.pendingFor(r.id);
    const lastUsed = pending && (!r.lastUsedAt || pending > r.lastUsedAt) ? pending : r.lastUsedAt;
    return {
      id: r.id,
      name: r.name,
      display: mine ? displayKey(r.keyStart, r.keyLast4) : maskedKey(this.config.apiKeys.prefix),
      masked: !mine,
      org_id: r.orgId,
      team_id: r.teamId,
      workflow_id: r.workflowId,
      scopes: r.scopes,
      status: r.expiresAt && r.expiresAt.getTime() <= Date.now() ? 'expired' : 'active',
      created_by: r.createdBy,
      created_at: r.createdAt.toISOString(),
      updated_at: r.updatedAt.toISOString(),
      expires_at: r.expiresAt?.toISOString() ?? null,
      last_used_at: lastUsed?.toISOString() ?? null,
      previous_secret_expires_at: r.previousKeyHash && r.previousExpiresAt && r.previousExpiresAt.getTime() > Date.now() ? r.previousExpiresAt.toISOString() : null,
      rate_limit: r.rateLimit,
    };
  }
}

/** CLI: everything. Owners/admins: every key of their organization. Members: keys they created. */
export function canManage(p: Principal | undefined, row: Pick<ApiKey, 'createdBy'>): boolean {
  if (!p) return true;
  if (isOrgAdmin(p)) return true;
  return !!p.userId && row.createdBy === p.userId;
}

/**
 * A key a delegated credential (API key or access token) creates or rolls stays within it: same or
 * fewer scopes, its workflow and (for a key) team restriction, an expiry no later than its own.
 */
function assertWithinCredential(p: Principal, k: Pick<ApiKey, 'scopes' | 'teamId' | 'workflowId' | 'expiresAt'>, action: 'create' | 'roll'): void {
  const extra = k.scopes.filter((s) => !p.scopes.includes(s));
  if (extra.length) {
    const what = action === 'create' ? 'Cannot grant scopes' : 'Cannot roll a key with scopes';
    throw new AppError(403, 'INSUFFICIENT_PERMISSIONS', `${what} the calling credential does not have: ${extra.join(', ')}`, { scopes: extra });
  }
  if (p.workflowId && k.workflowId !== p.workflowId) throw new AppError(403, 'WORKFLOW_ACCESS_DENIED', 'API key is not authorized for this workflow');
  if (p.teamId && p.kind === 'api_key' && k.teamId !== p.teamId) throw new AppError(403, 'FORBIDDEN', 'The calling key is restricted to another team');
  if (p.expiresAt && (!k.expiresAt || k.expiresAt > p.expiresAt)) {
    if (action === 'create') throw errors.validation('expires_at cannot be later than the calling credential expires', { field: 'expires_at' });
    throw new AppError(403, 'FORBIDDEN', 'The calling credential cannot roll a key that outlives it');
  }
}

/** The input schemas above at the edge: 400 VALIDATION_ERROR naming the first field at fault. */
export function validate<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') throw errors.validation(`Unknown field "${issue.keys[0]}"`, { field: issue.keys[0] });
    throw errors.validation(issue.message, { field: issue.path.join('.') });
  }
  return parsed.data;
}
