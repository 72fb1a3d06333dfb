import { flowgateErrors } from '@flowgate/sdk/errors';
import { AppError } from '../http/errors.js';

// Authentication errors in Flowgate's one JSON shape. Their codes and messages are defined once, in
// @flowgate/sdk, so Flowgate's API and every workflow service built on the SDK answer alike.

export const authErrors = {
  missing: () => flowgateErrors.missing(),
  invalidKey: (keyId?: string) => flowgateErrors.invalidKey(keyId),
  expiredKey: (keyId: string, expiredAt: Date) => flowgateErrors.expiredKey(expiredAt.toISOString(), keyId),
  queryKeyDisabled: () => flowgateErrors.queryKeyDisabled('organization'),
  invalidToken: (why?: string) => flowgateErrors.invalidToken(why),
  badCredential: (code: string, message: string) => flowgateErrors.badCredential(code, message),
  insufficientScope: (scope: string) => flowgateErrors.insufficientScope(scope),
  wrongOrganization: (what: string) => flowgateErrors.wrongOrganization(what),
  wrongWorkflow: (what: string) => flowgateErrors.wrongWorkflow(what),
  notMember: () => new AppError(403, 'FORBIDDEN', 'You are not a member of this organization'),
  notAdmin: () => new AppError(403, 'FORBIDDEN', 'Only owners and admins of the organization may do this'),
};
