import type { AppError } from '../http/errors.js';
import { authErrors } from './errors.js';
import type { Principal } from './principal.js';

/** What a request needs: the organization and workflow it acts on, the scopes it requires (all of them). */
export interface AccessRequirement {
  orgId?: string;
  workflowId?: string;
  scope?: string | string[];
}

/**
 * The one acceptance check for a resolved credential (Flowgate's routes, introspection, the SDK):
 * organization, then workflow restriction, then scopes. Returns the error to answer with, or
 * undefined when access is allowed. Non-throwing so hot paths can turn it into their own answer.
 */
export function checkAccess(p: Principal, need: AccessRequirement): AppError | undefined {
  const what = p.kind === 'api_key' ? 'API key' : p.kind === 'access_token' ? 'Access token' : 'Session';
  if (need.orgId !== undefined && need.orgId !== p.orgId) return authErrors.wrongOrganization(what);
  if (need.workflowId !== undefined && p.workflowId && need.workflowId !== p.workflowId) return authErrors.wrongWorkflow(what);
  const scopes = need.scope === undefined ? [] : Array.isArray(need.scope) ? need.scope : [need.scope];
  for (const s of scopes) if (!p.scopes.includes(s)) return authErrors.insufficientScope(s);
  return undefined;
}

/** checkAccess that throws (for routes). */
export function authorize(p: Principal, need: AccessRequirement): void {
  const err = checkAccess(p, need);
  if (err) throw err;
}
