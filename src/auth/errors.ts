import { AppError } from '../http/errors.js';

// The seeds' authentication errors (000, 003, 004), in Flowgate's one JSON shape.

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="flowgate"' };

export const authErrors = {
  missing: () =>
    new AppError(401, 'MISSING_API_KEY', "API key is required. Send it as 'Authorization: Bearer <key>' or in the x-api-key header.", { header: 'Authorization' }, CHALLENGE),
  invalidKey: (keyId?: string) =>
    new AppError(401, 'INVALID_API_KEY', 'The provided API key is invalid', keyId ? { key_id: keyId } : undefined, CHALLENGE),
  expiredKey: (keyId: string, expiredAt: Date) =>
    new AppError(401, 'EXPIRED_API_KEY', 'The API key has expired', { key_id: keyId, expired_at: expiredAt.toISOString() }, CHALLENGE),
  queryKeyDisabled: () =>
    new AppError(401, 'QUERY_API_KEY_DISABLED', 'This organization does not accept API keys in the query string; send the key in the x-api-key or Authorization header', { parameter: 'api-key' }, CHALLENGE),
  invalidToken: (why = 'The access token is invalid or expired') => new AppError(401, 'INVALID_TOKEN', why, undefined, CHALLENGE),
  badCredential: (code: string, message: string) => new AppError(400, code, message),
  insufficientScope: (scope: string) =>
    new AppError(403, 'INSUFFICIENT_PERMISSIONS', `This operation requires the "${scope}" scope`, { required_scope: scope }),
  wrongOrganization: (what: string) => new AppError(403, 'ORGANIZATION_ACCESS_DENIED', `${what} is not authorized for this organization`),
  wrongWorkflow: (what: string) => new AppError(403, 'WORKFLOW_ACCESS_DENIED', `${what} is not authorized for this workflow`),
  notMember: () => new AppError(403, 'FORBIDDEN', 'You are not a member of this organization'),
  notAdmin: () => new AppError(403, 'FORBIDDEN', 'Only owners and admins of the organization may do this'),
};
