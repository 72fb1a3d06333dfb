import type { Services } from '../services.js';
import { checkCsrf } from '../http/csrf.js';
import type { Principal } from '../auth/principal.js';
import { scopesForRole } from '../apikeys/presets.js';
import type { SessionStore } from '../auth/sessions.js';
import { SESSION_COOKIE } from './context.js';

/**
 * The JSON API accepts a dashboard session too, but only with the session's CSRF token in
 * `X-CSRF-Token`: a cross-site page cannot set that header, so the cookie alone never authorizes.
 * The organization is `X-Org-Id` or the user's first one; the scopes are those of the user's role.
 */
export function sessionResolver(s: Pick<Services, 'config' | 'accounts'>, sessions: SessionStore) {
  const secret = s.config.cookieSecrets[0];
  return async (req: { headers: Record<string, string | string[] | undefined>; cookies?: { get(name: string, opts?: { signed?: boolean }): string | undefined } }): Promise<Principal | undefined> => {
    const id = req.cookies?.get(SESSION_COOKIE, { signed: false });
    if (!id) return undefined;
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string') return undefined;
    try {
      checkCsrf(secret, `dash:${id}`, token);
    } catch {
      return undefined;
    }
    const session = await sessions.get(id);
    if (!session) return undefined;
    const wanted = req.headers['x-org-id'];
    const orgs = await s.accounts.membershipsOf(session.userId);
    const org = typeof wanted === 'string' ? orgs.find((o) => o.orgId === wanted) : orgs[0];
    if (!org) return undefined;
    return { kind: 'session', orgId: org.orgId, userId: session.userId, role: org.role, teamId: org.teamId, scopes: scopesForRole(org.role) };
  };
}
