import type { Context } from 'koa';

/**
 * The seeds' error shape, `{"success": false, "error": {"code", "message", "details"}}`, with the same
 * codes Flowgate's own API uses. The SDK stands alone (it could be published as its own package), so
 * it carries its own small copy instead of importing Flowgate's error helper.
 */
export class SdkError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="flowgate"' };

export const sdkErrors = {
  missing: () =>
    new SdkError(401, 'MISSING_API_KEY', "API key is required. Send it as 'Authorization: Bearer <key>' or in the x-api-key header.", { header: 'Authorization' }, CHALLENGE),
  invalid: (kind: 'api_key' | 'token') =>
    kind === 'api_key'
      ? new SdkError(401, 'INVALID_API_KEY', 'Invalid or inactive API key.', undefined, CHALLENGE)
      : new SdkError(401, 'INVALID_TOKEN', 'The access token is invalid or expired', undefined, CHALLENGE),
  malformed: (message: string) => new SdkError(400, 'MALFORMED_CREDENTIAL', message),
  queryDisabled: () =>
    new SdkError(401, 'QUERY_API_KEY_DISABLED', 'This service does not accept API keys in the query string; send the key in the x-api-key or Authorization header', { parameter: 'api-key' }, CHALLENGE),
  insufficientScope: (scope: string) =>
    new SdkError(403, 'INSUFFICIENT_PERMISSIONS', `This operation requires the "${scope}" scope`, { required_scope: scope }),
  wrongWorkflow: (what: string) => new SdkError(403, 'WORKFLOW_ACCESS_DENIED', `${what} is not authorized for this workflow`),
  wrongOrganization: (what: string) => new SdkError(403, 'ORGANIZATION_ACCESS_DENIED', `${what} is not authorized for this organization`),
  unavailable: () => new SdkError(503, 'AUTH_UNAVAILABLE', 'The authorization server could not be reached; try again shortly'),
};

export function sendSdkError(ctx: Context, err: SdkError): void {
  ctx.status = err.status;
  if (err.headers) ctx.set(err.headers);
  ctx.body = { success: false, error: { code: err.code, message: err.message, ...(err.details && { details: err.details }) } };
}
