import { z } from 'zod';

/**
 * The JSON API's answer shapes as zod schemas, for the OpenAPI document and the tests that check
 * every answer against it: `{"success": true, "data": ...}` (lists add `next_cursor`) and the one
 * error shape `{"success": false, "error": {"code", "message", "details"?}}`.
 */
export const ValidationIssueSchema = z
  .object({
    path: z.string().meta({ description: "The field's dotted path as the request names it; empty for the request as a whole" }),
    message: z.string(),
  })
  .meta({ id: 'ValidationIssue' });

export const ErrorSchema = z
  .object({
    success: z.literal(false),
    error: z.object({
      code: z.string().meta({ description: 'Stable, machine-readable (see the description of each status)' }),
      message: z.string().meta({ description: 'For people; may change' }),
      details: z
        .looseObject({ issues: z.array(ValidationIssueSchema).optional() })
        .optional()
        .meta({ description: '`issues` names the input fields at fault (VALIDATION_ERROR and other field errors); other codes add their own keys' }),
    }),
  })
  .meta({ id: 'Error' });

/** The codes each status answers with, for the document's words. */
export const ERROR_CODES: Record<number, { description: string; codes: string[] }> = {
  400: { description: 'Invalid input', codes: ['VALIDATION_ERROR (details.issues)', 'INVALID_JSON', 'BAD_REQUEST', 'MALFORMED_AUTHORIZATION', 'MULTIPLE_CREDENTIALS'] },
  401: { description: 'No valid credential (WWW-Authenticate: Bearer)', codes: ['MISSING_API_KEY', 'INVALID_API_KEY', 'EXPIRED_API_KEY (details.expired_at)', 'QUERY_API_KEY_DISABLED', 'INVALID_TOKEN', 'INVALID_SIGNATURE'] },
  403: {
    description: 'The credential may not do this',
    codes: ['INSUFFICIENT_PERMISSIONS (details.required_scope or required_role)', 'RESTRICTED_CREDENTIAL', 'WORKFLOW_ACCESS_DENIED', 'ORGANIZATION_ACCESS_DENIED', 'FORBIDDEN', 'KEY_LIMIT_REACHED', 'SCOPE_WIDENING_NOT_ALLOWED'],
  },
  404: { description: 'No such object in the caller\'s organization (other organizations\' objects are never revealed)', codes: ['NOT_FOUND'] },
  409: { description: 'Conflicts with the current state', codes: ['CONFLICT', 'LAST_OWNER', 'TEAM_HAS_KEYS'] },
  410: { description: 'Gone', codes: ['INVITATION_INVALID'] },
  413: { description: 'Body larger than BODY_LIMIT', codes: ['PAYLOAD_TOO_LARGE'] },
  415: { description: 'Body not JSON, or compressed', codes: ['UNSUPPORTED_MEDIA_TYPE'] },
  429: { description: 'Rate limited (Retry-After, RateLimit headers)', codes: ['RATE_LIMITED'] },
};

export function ok<T extends z.ZodType>(data: T) {
  return z.object({ success: z.literal(true), data });
}

export function okPage<T extends z.ZodType>(item: T) {
  return z.object({
    success: z.literal(true),
    data: z.array(item),
    next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page' }),
  });
}

export const DeletedSchema = z.object({ id: z.string(), deleted: z.literal(true) }).meta({ id: 'Deleted' });
