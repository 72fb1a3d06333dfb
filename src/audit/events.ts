import type { AuditEvent } from './entity.js';

/**
 * The public event types. Every one of them is an audit action recorded through
 * `AuditLog.record`; only these reach the outbox and webhooks. Other audit actions (organization.created,
 * webhook_endpoint.created, ...) stay in the audit log only.
 */
export const EVENT_TYPES = [
  'api_key.created',
  'api_key.updated',
  'api_key.rolled',
  'api_key.revoked',
  'api_key.expiring',
  'api_key.expired',
  'api_key.leaked',
  'oauth_client.created',
  'oauth_client.updated',
  'oauth_client.deleted',
  'oauth_client.secret_rotated',
  'consent.granted',
  'consent.revoked',
  'member.added',
  'member.removed',
  'member.role_changed',
  'member.team_changed',
  'member.invited',
  'invitation.revoked',
  'team.created',
  'team.updated',
  'team.deleted',
  'organization.updated',
  'signing_key.rotated',
  'security.refresh_token_reused',
  'webhook_endpoint.disabled',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** Sent only by `POST /api/v1/webhooks/{id}/test`, to that endpoint alone. */
export const TEST_EVENT_TYPE = 'webhook.test';

/** Audit action names that other services use for the same change under another word. */
const ACTION_ALIASES: Record<string, EventType> = {
  'api_key.deleted': 'api_key.revoked',
  'api_key.renamed': 'api_key.updated',
  'api_key.scopes_changed': 'api_key.updated',
  'api_key.scopes_narrowed': 'api_key.updated',
  'api_key.secret_rolled': 'api_key.rolled',
  'oauth_client.rotated_secret': 'oauth_client.secret_rotated',
  'membership.created': 'member.added',
  'membership.deleted': 'member.removed',
  'membership.role_changed': 'member.role_changed',
  'refresh_token.reused': 'security.refresh_token_reused',
};

const KNOWN = new Set<string>(EVENT_TYPES);

/** The event type an audit action emits, or undefined when the action is audit-only. */
export function eventTypeFor(action: string): EventType | undefined {
  if (KNOWN.has(action)) return action as EventType;
  return ACTION_ALIASES[action];
}

/** Events without an organization that still concern every organization (JWT verifiers' keys). */
export const GLOBAL_EVENT_TYPES = new Set<string>(['signing_key.rotated']);

/** Detail keys that could carry a secret are never copied into an event (defence in depth). */
const SECRET_KEY = /(secret|password|passwd|token(?!_type)|hash|pepper|private|credential|^key$|^raw)/i;

export function sanitizeDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details ?? {})) {
    if (SECRET_KEY.test(k)) continue;
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) ? sanitizeDetails(v as Record<string, unknown>) : v;
  }
  return out;
}

export interface EventBody {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/**
 * The webhook body (Standard Webhooks shape `{type, timestamp, data}`): names the object, the
 * organization, the actor, the time and the IP; the audit details minus anything secret-like.
 */
export function eventBody(type: string, e: Pick<AuditEvent, 'id' | 'orgId' | 'actorType' | 'actorId' | 'targetType' | 'targetId' | 'ip' | 'details' | 'createdAt'>): EventBody {
  const occurred = new Date(e.createdAt).toISOString();
  return {
    type,
    timestamp: occurred,
    data: {
      ...sanitizeDetails(e.details ?? {}),
      event_id: e.id,
      object: e.targetType,
      id: e.targetId,
      organization_id: e.orgId,
      actor: { type: e.actorType, id: e.actorId },
      ip: e.ip,
      occurred_at: occurred,
    },
  };
}
