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
import { countActiveKeys } from '../storage/queries/api-keys.js';
import { displayKey, generateApiKey, maskedKey, parseApiKey } from '../credentials/api-key-format.js';
import { hashApiKey } from '../credentials/api-key-hash.js';
import { API_KEY_SCOPES, normalizeScopes, PRESET_NAMES, PRESETS } from './presets.js';
import { ADMIN_SCOPES } from '../oauth/scopes.js';
import { restrictionOf } from '../auth/access.js';
import { paginate, type Page, type PageRequest } from '../http/pagination.js';
import type { LastUsedTracker } from './last-used.js';

export const MAX_GRACE_SECONDS = 30 * 86400;

const scopeList = z
  .union([z.array(z.string()), z.string().transform((s) => s.split(/[\s,]+/).filter(Boolean))])
  .pipe(z.array(z.enum(API_KEY_SCOPES as [string, ...string[]], { message: `unknown scope; allowed: ${API_KEY_SCOPES.join(', ')}` })).min(1, 'at least one scope is required'));

export const createApiKeyInput = z
  .strictObject({
    name: z.string().trim().min(1, 'name is required').max(200),
    scopes: scopeList.optional().meta({ description: 'Scopes (an array, or one string separated by spaces or commas); give either scopes or preset' }),
    preset: z.enum(PRESET_NAMES as [string, ...string[]], { message: `preset must be one of ${PRESET_NAMES.join(', ')}` }).optional(),
    team_id: z.string().refine(isUuid, 'team_id must be a UUID').nullish().meta({ description: 'Restrict the key to one team' }),
    workflow_id: z.string().trim().min(1).max(200).regex(/^[\w.:-]+$/, 'workflow_id may hold letters, digits and . _ : -').nullish().meta({ description: 'Restrict the key to one workflow' }),
    expires_at: z.iso.datetime({ offset: true, message: 'expires_at must be an ISO 8601 date-time' }).nullish(),
  })
  .refine((v) => (v.scopes === undefined) !== (v.preset === undefined), { message: 'give either scopes or preset', path: ['scopes'] })
  .meta({ id: 'ApiKeyCreate' });

export const updateApiKeyInput = z
  .strictObject({
    name: z.string().trim().min(1, 'name is required').max(200).optional(),
    scopes: scopeList.optional().meta({ description: 'Narrower scopes (never wider)' }),
  })
  .meta({ id: 'ApiKeyUpdate' });

export const rollApiKeyInput = z
  .strictObject({ grace_seconds: z.number({ error: 'grace_seconds must be a number' }).int().min(0).max(MAX_GRACE_SECONDS).optional() })
  .meta({ id: 'ApiKeyRoll' });

/** The list's filters (the same as the query of GET /api/v1/auth/api-keys). */
export interface ApiKeyFilter {
  team_id?: string;
  workflow_id?: string;
}

export type CreateApiKeyInput = z.output<typeof createApiKeyInput>;
export type UpdateApiKeyInput = z.output<typeof updateApiKeyInput>;

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
  /** `sk-AbCd…wxyz` for keys the caller may manage; fully masked otherwise. */
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

  /** Issues a key (input parsed by createApiKeyInput). The full key is in the answer once and never again. */
  async create(caller: Caller, orgId: string, input: CreateApiKeyInput): Promise<{ key: string; apiKey: ApiKeyView }> {
    const p = caller.principal;
    if (p && p.orgId !== orgId) throw errors.notFound(`Organization ${orgId} not found`);
    const org = await this.accounts.getOrganization(orgId);
    let scopes = normalizeScopes(input.preset ? PRESETS[input.preset as keyof typeof PRESETS] : input.scopes!);
    // Members never hold the owners' and admins' scopes: their full_access is everything else.
    if (p && !isOrgAdmin(p)) {
      const adminOnly = scopes.filter((s) => ADMIN_SCOPES.includes(s));
      if (adminOnly.length && !input.preset) {
        throw new AppError(403, 'INSUFFICIENT_PERMISSIONS', `Only owners and admins hold: ${adminOnly.join(', ')}`, { scopes: adminOnly, required_role: 'admin' });
      }
      scopes = scopes.filter((s) => !ADMIN_SCOPES.includes(s));
    }
    let teamId = input.team_id ?? null;
    let workflowId = input.workflow_id ?? null;
    let expiresAt = input.expires_at ? new Date(input.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw errors.validation('expires_at must be in the future', 'expires_at');

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
        const n = await countActiveKeys(m, orgId);
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
  async list(caller: Caller, orgId: string, filter: ApiKeyFilter = {}): Promise<ApiKeyView[]> {
    const p = caller.principal;
    if (p && p.orgId !== orgId) throw errors.notFound(`Organization ${orgId} not found`);
    await this.accounts.getOrganization(orgId);
    const rows = await this.repo().find({
      where: { orgId, revokedAt: IsNull(), ...(filter.team_id && { teamId: filter.team_id }), ...(filter.workflow_id && { workflowId: filter.workflow_id }) },
      order: { createdAt: 'DESC', id: 'DESC' },
    });
    return rows.map((r) => this.view(r, p));
  }

  /** One page of list(), newest first. */
  async page(caller: Caller, orgId: string, req: PageRequest & ApiKeyFilter): Promise<Page<ApiKeyView>> {
    return paginate('api_keys', await this.list(caller, orgId, req), req, (k) => [k.created_at, k.id], { desc: true });
  }

  /** Live keys restricted to a team (what deleting the team would revoke). */
  async countForTeam(orgId: string, teamId: string): Promise<number> {
    return this.repo().countBy({ orgId, teamId, revokedAt: IsNull() });
  }

  /** Revokes every live key restricted to a team (the team is being deleted); returns their ids. */
  async revokeForTeam(caller: Caller, orgId: string, teamId: string): Promise<string[]> {
    const rows = await this.repo().find({ where: { orgId, teamId, revokedAt: IsNull() } });
    for (const row of rows) {
      await this.ds.transaction(async (m) => {
        await this.repo(m).update({ id: row.id }, { revokedAt: new Date(), previousKeyHash: null, previousExpiresAt: null, updatedAt: new Date() });
        await this.audit.record(caller.actor, { orgId, action: 'api_key.revoked', targetType: 'api_key', targetId: row.id, details: { name: row.name, reason: 'team_deleted', team_id: teamId } }, m);
      });
      await this.verifier.invalidate(row.id);
    }
    return rows.map((r) => r.id);
  }

  /**
   * The key, if the caller may manage it (the rate-limit routes call this before changing a key's
   * limits): same organization, ownership for members, and within a restricted credential's reach.
   */
  async getManageable(caller: Caller, id: string): Promise<ApiKeyView> {
    return this.view(await this.findManageable(caller, id), caller.principal);
  }

  async get(caller: Caller, id: string): Promise<ApiKeyView> {
    return this.view(await this.find(caller, id), caller.principal);
  }

  /** Renames and/or narrows scopes. Never widens: a wider key is a new key. */
  async update(caller: Caller, id: string, input: UpdateApiKeyInput): Promise<ApiKeyView> {
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
    const grace = Math.max(0, Math.min(graceSeconds ?? this.config.apiKeys.defaultRollGraceSeconds, MAX_GRACE_SECONDS));
    // Rolling hands out the key's new secret: a delegated credential may only roll keys it could have
    // minted (assertWithinCredential covers its workflow and team restriction too).
    const row = await this.findManageable(caller, id, { restriction: false });
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

  /** Delete = revoke: immediate (every instance, via invalidation) and final. */
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

  private async findManageable(caller: Caller, id: string, opts: { restriction?: boolean } = {}): Promise<ApiKey> {
    const row = await this.find(caller, id);
    if (!canManage(caller.principal, row)) throw new AppError(403, 'FORBIDDEN', 'Members can manage only their own API keys');
    if (caller.principal && opts.restriction !== false) assertWithinRestriction(caller.principal, row);
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
 * A workflow- or team-restricted credential manages only keys within its restriction: renaming,
 * narrowing, rolling, deleting or rate-limiting a key of another workflow or team (or an
 * unrestricted one) is refused.
 */
function assertWithinRestriction(p: Principal, k: Pick<ApiKey, 'teamId' | 'workflowId'>): void {
  const r = restrictionOf(p);
  if (!r) return;
  if (r.workflowId && k.workflowId !== r.workflowId) throw new AppError(403, 'WORKFLOW_ACCESS_DENIED', 'API key is not authorized for this workflow');
  if (r.teamId && k.teamId !== r.teamId) throw new AppError(403, 'FORBIDDEN', 'The calling key is restricted to another team');
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
    if (action === 'create') throw errors.validation('expires_at cannot be later than the calling credential expires', 'expires_at');
    throw new AppError(403, 'FORBIDDEN', 'The calling credential cannot roll a key that outlives it');
  }
}
