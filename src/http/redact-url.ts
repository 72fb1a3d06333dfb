import { unescape as queryUnescape } from 'node:querystring';

/**
 * URLs as they may be written to logs: every value that grants access replaced by `[redacted]`.
 *
 * Names are compared the way the readers could see them, not the way they were typed: after
 * percent-decoding (`api%2Dkey`, `api-k%65y`), case-folded and with separators dropped (`api-key`,
 * `api_key`, `apiKey`, `API-KEY` are one name). Over-redacting a harmless parameter costs nothing;
 * missing a spelling leaks a credential.
 */
const SECRET_PARAMS = new Set(
  [
    // API keys and bearer credentials (RFC 6750 §2.3 access_token in the query).
    'api-key', 'apikey', 'key', 'access_token', 'token', 'refresh_token', 'id_token', 'id_token_hint',
    // Client authentication (RFC 6749 §2.3.1, RFC 7523 §2.2).
    'client_secret', 'client_assertion', 'assertion', 'password', 'secret',
    // Grants in flight: codes, PKCE verifiers, device and user codes, token exchange (RFC 8693 §2.1).
    'code', 'code_verifier', 'device_code', 'user_code', 'subject_token', 'actor_token',
    // Values that let whoever holds them resume or bind a flow: state (RFC 6749 §10.12), request
    // objects and their references (RFC 9101, RFC 9126), CSRF values.
    'state', 'request', 'request_uri', 'csrf', 'xsrf',
    // Invitation links (their token is the credential).
    'invitation', 'invitation_token',
  ].map(normalizeName),
);

/**
 * Paths whose next segment is a secret: `[...prefix, <secret>]`. Matched on decoded segments and
 * case-insensitively, as the router matches them.
 */
const SECRET_PATH_SEGMENTS: readonly (readonly string[])[] = [['dashboard', 'invitations']];

const SECRET_PATH_ENDINGS = SECRET_PATH_SEGMENTS.map((p) => p[p.length - 1]);

/** Parameters whose value is itself a URL of this server (a `next` after sign-in): redacted inside. */
const NESTED_URL_PARAMS = new Set(['next', 'return_to', 'redirect'].map(normalizeName));

export const REDACTED = '[redacted]';

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Decodes like Koa's query parser (node:querystring): `+` is a space, bad escapes stay as they are. */
function decodeQueryPart(s: string): string {
  return queryUnescape(s.replace(/\+/g, ' '));
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function redactPath(path: string): string {
  // Nothing to find without an escape or the last word of a secret-bearing prefix (every request
  // logs its path: most are /token/introspection).
  if (!path.includes('%') && !SECRET_PATH_ENDINGS.some((w) => path.toLowerCase().includes(w))) return path;
  const segments = path.split('/');
  const decoded = segments.map((s) => decodeSegment(s).toLowerCase());
  // Empty segments (`//`) are skipped when matching, as the router collapses them.
  const meaningful = decoded.map((s, i) => ({ s, i })).filter((x) => x.s !== '');
  for (const prefix of SECRET_PATH_SEGMENTS) {
    for (let k = 0; k + prefix.length < meaningful.length; k++) {
      if (prefix.every((p, j) => meaningful[k + j].s === p)) segments[meaningful[k + prefix.length].i] = REDACTED;
    }
  }
  return segments.join('/');
}

function redactQuery(query: string, depth: number): string {
  return query
    .split('&')
    .map((pair) => {
      if (pair === '') return pair;
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      const name = normalizeName(decodeQueryPart(rawName));
      if (SECRET_PARAMS.has(name)) return `${rawName}=${REDACTED}`;
      if (eq >= 0 && NESTED_URL_PARAMS.has(name) && depth < 2) {
        const value = decodeQueryPart(pair.slice(eq + 1));
        if (value.startsWith('/')) return `${rawName}=${encodeURIComponent(redact(value, depth + 1))}`;
      }
      return pair;
    })
    .join('&');
}

function redact(url: string, depth: number): string {
  const hash = url.indexOf('#');
  const noFragment = hash < 0 ? url : url.slice(0, hash);
  const q = noFragment.indexOf('?');
  const path = q < 0 ? noFragment : noFragment.slice(0, q);
  const query = q < 0 ? undefined : noFragment.slice(q + 1);
  return redactPath(path) + (query === undefined ? '' : `?${redactQuery(query, depth)}`) + (hash < 0 ? '' : `#${REDACTED}`);
}

/** The request target (path and query) with every secret-bearing segment and parameter value redacted. */
export function redactUrl(url: string): string {
  return redact(url, 0);
}
