/**
 * Flowgate's one error vocabulary for callers of workflow APIs: the JSON shape
 * `{"success": false, "error": {"code", "message", "details"}}` with the codes Flowgate's own API
 * answers. Flowgate's server builds its authentication errors from these same definitions, so a
 * caller sees the same code and message whether Flowgate or a workflow service refused it.
 */
export class FlowgateError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'FlowgateError';
  }

  /** The response body. */
  body(): ErrorBody {
    return errorBody(this.code, this.message, this.details);
  }
}

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { success: false, error: { code, message, ...(details !== undefined && { details }) } };
}

/** RFC 6750 §3: a 401 for a protected resource carries a Bearer challenge. */
const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="flowgate"' };

/** Who was refused, in the words of the messages ("API key is not authorized for this workflow"). */
export type CredentialNoun = 'API key' | 'Access token' | 'Service token';

export const flowgateErrors = {
  missing: () =>
    new FlowgateError(401, 'MISSING_API_KEY', "API key is required. Send it as 'Authorization: Bearer <key>' or in the x-api-key header.", { header: 'Authorization' }, CHALLENGE),
  invalidKey: (keyId?: string) =>
    new FlowgateError(401, 'INVALID_API_KEY', 'The provided API key is invalid', keyId ? { key_id: keyId } : undefined, CHALLENGE),
  /** `expiredAt` is ISO 8601. */
  expiredKey: (expiredAt: string, keyId?: string) =>
    new FlowgateError(401, 'EXPIRED_API_KEY', 'The API key has expired', { ...(keyId && { key_id: keyId }), expired_at: expiredAt }, CHALLENGE),
  /** `by`: the organization's setting (Flowgate says so), or this service's own `allowQuery: false`. */
  queryKeyDisabled: (by: 'organization' | 'service' = 'organization') =>
    new FlowgateError(
      401,
      'QUERY_API_KEY_DISABLED',
      `This ${by} does not accept API keys in the query string; send the key in the x-api-key or Authorization header`,
      { parameter: 'api-key' },
      CHALLENGE,
    ),
  invalidToken: (why = 'The access token is invalid or expired') => new FlowgateError(401, 'INVALID_TOKEN', why, undefined, CHALLENGE),
  /** A request whose credential cannot be read: `MALFORMED_AUTHORIZATION` or `MULTIPLE_CREDENTIALS`. */
  badCredential: (code: string, message: string) => new FlowgateError(400, code, message),
  insufficientScope: (scope: string) =>
    new FlowgateError(403, 'INSUFFICIENT_PERMISSIONS', `This operation requires the "${scope}" scope`, { required_scope: scope }),
  wrongOrganization: (what: CredentialNoun | string) => new FlowgateError(403, 'ORGANIZATION_ACCESS_DENIED', `${what} is not authorized for this organization`),
  wrongWorkflow: (what: CredentialNoun | string) => new FlowgateError(403, 'WORKFLOW_ACCESS_DENIED', `${what} is not authorized for this workflow`),
  rateLimited: (message: string, retryAfter: number, headers: Record<string, string> = {}) =>
    new FlowgateError(429, 'RATE_LIMITED', message, undefined, { ...headers, 'Retry-After': String(retryAfter) }),
  /** Flowgate could not be reached or failed: never a silent allow. */
  unavailable: () => new FlowgateError(503, 'AUTH_UNAVAILABLE', 'The authorization server could not be reached; try again shortly', undefined, { 'Retry-After': '1' }),
  /**
   * Flowgate refused this service's own client credentials (wrong secret, or a client without the
   * introspection permission): the operator must fix the service's configuration; retrying will not help.
   */
  misconfigured: () =>
    new FlowgateError(500, 'AUTH_MISCONFIGURED', "This service's connection to the authorization server is misconfigured; its operator has been told what to fix"),
  // Receiving webhooks.
  missingWebhookHeaders: (names: string[]) =>
    new FlowgateError(400, 'MISSING_WEBHOOK_HEADERS', `Missing webhook header${names.length > 1 ? 's' : ''}: ${names.join(', ')}`, { headers: names }),
  badWebhookSignature: () => new FlowgateError(401, 'INVALID_WEBHOOK_SIGNATURE', 'The webhook signature does not match'),
  staleWebhook: (tolerance: number) =>
    new FlowgateError(401, 'WEBHOOK_TIMESTAMP_OUT_OF_RANGE', `The webhook timestamp is more than ${tolerance} seconds from now`, { tolerance_seconds: tolerance }),
  replayedWebhook: (id: string) => new FlowgateError(409, 'WEBHOOK_REPLAYED', 'This webhook was already received', { webhook_id: id }),
  badWebhookBody: () => new FlowgateError(400, 'INVALID_WEBHOOK_BODY', 'The webhook body is not a JSON event'),
  tooLarge: (max: number) => new FlowgateError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds the ${max}-byte limit`, { limitBytes: max }),
};
