import { flowgateErrors, type FlowgateError } from '@flowgate/sdk/errors';
import { AppError } from '../http/errors.js';

// Authentication errors in Flowgate's one JSON shape. Their codes and messages are defined once, in
// @flowgate/sdk, so Flowgate's API and every workflow service built on the SDK answer alike.

const app = (e: FlowgateError) => new AppError(e.status, e.code, e.message, e.details, e.headers);

export const authErrors = {
  missing: () => app(flowgateErrors.missing()),
  invalidKey: (keyId?: string) => app(flowgateErrors.invalidKey(keyId)),
  expiredKey: (keyId: string, expiredAt: Date) => app(flowgateErrors.expiredKey(expiredAt.toISOString(), keyId)),
  queryKeyDisabled: () => app(flowgateErrors.queryKeyDisabled('organization')),
  invalidToken: (why?: string) => app(flowgateErrors.invalidToken(why)),
  badCredential: (code: string, message: string) => app(flowgateErrors.badCredential(code, message)),
  insufficientScope: (scope: string) => app(flowgateErrors.insufficientScope(scope)),
  wrongOrganization: (what: string) => app(flowgateErrors.wrongOrganization(what)),
  wrongWorkflow: (what: string) => app(flowgateErrors.wrongWorkflow(what)),
  notMember: () => new AppError(403, 'FORBIDDEN', 'You are not a member of this organization'),
  notAdmin: () => new AppError(403, 'FORBIDDEN', 'Only owners and admins of the organization may do this'),
};
