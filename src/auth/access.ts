import { AppError } from '../http/errors.js';
import type { Access } from '../http/guard.js';
import { authorize } from './authorize.js';
import { isOrgAdmin, type Principal } from './principal.js';

/** A workflow restriction, or (for API keys) a team restriction: what the credential is confined to. */
export function restrictionOf(p: Principal): { workflowId?: string; teamId?: string } | undefined {
  if (p.kind === 'session') return undefined;
  const workflowId = p.workflowId ?? undefined;
  // A user's own team (access tokens, sessions) is where they sit, not a limit of the credential;
  // an API key's team is a limit, and so is that of a token exchanged from a key.
  const teamId = p.kind === 'api_key' || p.exchanged ? (p.teamId ?? undefined) : undefined;
  if (!workflowId && !teamId) return undefined;
  return { ...(workflowId && { workflowId }), ...(teamId && { teamId }) };
}

export function restrictedError(r: { workflowId?: string; teamId?: string }): AppError {
  const what = r.workflowId ? `workflow ${r.workflowId}` : 'one team';
  return new AppError(403, 'RESTRICTED_CREDENTIAL', `This credential is restricted to ${what}; organization-wide changes need an unrestricted credential`, {
    ...(r.workflowId && { workflow_id: r.workflowId }),
    ...(r.teamId && { team_id: r.teamId }),
  });
}

export function checkAccess(p: Principal, a: Access): void {
  authorize(p, { scope: [...a.scopes] });
  if (a.admin && !isOrgAdmin(p)) {
    throw new AppError(403, 'INSUFFICIENT_PERMISSIONS', 'Only organization owners and admins may do this', { required_role: 'admin', ...(a.scopes[0] && { required_scope: a.scopes[0] }) });
  }
  const r = a.restricted === 'refuse' ? restrictionOf(p) : undefined;
  if (r) throw restrictedError(r);
}

