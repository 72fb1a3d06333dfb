/** RFC 7662 §2.2 answer plus Flowgate's fields. An inactive answer is exactly `{active: false}`. */
export interface ActiveAnswer {
  active: true;
  scope?: string;
  client_id?: string;
  sub?: string;
  exp?: number;
  iat?: number;
  iss?: string;
  aud?: string | string[];
  token_type?: string;
  jti?: string;
  credential_type: 'access_token' | 'refresh_token' | 'api_key' | 'service_jwt';
  org_id?: string | null;
  team_id?: string | null;
  workflow_id?: string | null;
  key_id?: string;
  [extra: string]: unknown;
}

export type Answer = ActiveAnswer | { active: false };

export const INACTIVE = Object.freeze({ active: false as const });

/** The authenticated resource server asking. */
export interface Caller {
  clientId: string;
  orgId: string;
}

/** One per credential kind; returns null when the credential is not of its kind or not active. */
export type Resolver = (token: string, caller: Caller) => Promise<ActiveAnswer | null>;
