import { AppError } from '../http/errors.js';
import type { ApiKeysService, Caller } from './service.js';
import type { AccountsService } from '../accounts/service.js';

/**
 * Deleting a team, for the API and the CLI alike. A key restricted to the team must not outlive it
 * (left alone it would point at nothing; unrestricted it would reach further than it was made to),
 * so the team's live keys are revoked with it, and only when the caller says so: otherwise
 * 409 TEAM_HAS_KEYS names how many there are. Members stay in the organization without a team.
 */
export async function deleteTeam(
  d: { accounts: AccountsService; apiKeys: ApiKeysService },
  caller: Caller,
  orgId: string,
  teamId: string,
  opts: { revokeKeys: boolean },
): Promise<{ revokedApiKeys: string[] }> {
  await d.accounts.findTeam(orgId, teamId);
  const live = await d.apiKeys.countForTeam(orgId, teamId);
  if (live > 0 && !opts.revokeKeys) {
    throw new AppError(409, 'TEAM_HAS_KEYS', `${live} API key(s) are restricted to this team; delete them first, or delete the team with revoke_keys=true to revoke them with it`, { api_keys: live });
  }
  const revokedApiKeys = live > 0 ? await d.apiKeys.revokeForTeam(caller, orgId, teamId) : [];
  await d.accounts.deleteTeam(caller.actor, orgId, teamId, { revoked_api_keys: revokedApiKeys.length });
  return { revokedApiKeys };
}
