import type { ApiKeyVerifier } from '../../apikeys/verify.js';
import type { ActiveAnswer } from '../types.js';

/** Kept on the answer for the query-parameter check; symbols never reach the JSON response. */
export const QUERY_ALLOWED = Symbol('queryAllowed');

/**
 * API keys through the API-key verifier (checksum first, so a made-up key never reaches a store).
 * Answers may be cached by the introspector (flushed on `apikeys:invalidate`); it counts every use,
 * cached or not, for `last_used_at`. A rolled-away secret in its grace period is never cached, so the
 * cache cannot outlive the grace.
 */
export function apiKeyResolver(verifier: ApiKeyVerifier, issuer: string) {
  return async (token: string): Promise<ActiveAnswer | null> => {
    const v = await verifier.verify(token);
    if (!v.ok) return null;
    const k = v.key;
    const answer: ActiveAnswer = {
      active: true,
      scope: k.scopes.join(' '),
      client_id: k.id,
      sub: k.createdBy ?? k.id,
      ...(k.expiresAt && { exp: Math.floor(k.expiresAt.getTime() / 1000) }),
      iss: issuer,
      token_type: 'Bearer',
      credential_type: 'api_key',
      org_id: k.orgId,
      team_id: k.teamId,
      workflow_id: k.workflowId,
      key_id: k.id,
    };
    Object.defineProperty(answer, QUERY_ALLOWED, { value: k.orgAllowsQueryKey, enumerable: false });
    if (k.matched === 'previous') Object.defineProperty(answer, NO_CACHE, { value: true, enumerable: false });
    return answer;
  };
}

export const NO_CACHE = Symbol('noCache');
