/**
 * The route template of a request path, for metric labels and span names: bounded by construction.
 * Paths Flowgate serves map to their template (ids become `:id`); anything else is `other`, so a
 * scanner probing random paths cannot grow the series count.
 */
const EXACT = new Set([
  '/',
  '/healthz',
  '/readyz',
  '/metrics',
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/auth',
  '/me',
  '/jwks',
  '/reg',
  '/session/end',
  '/session/end/confirm',
  '/request',
  '/device/auth',
  '/backchannel',
  '/ratelimit/check',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  '/static/app.css',
  '/static/dashboard.js',
]);

const PREFIXES = ['/api/v1/', '/dashboard', '/interaction/', '/auth/', '/session/', '/reg/', '/demo/'];

/** A segment that names one thing (uuid, random id, numeric id, a key or token) rather than a route. */
function isIdLike(seg: string): boolean {
  if (/^\d+$/.test(seg)) return true;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg)) return true;
  // Random identifiers mix letters and digits or are long: fgc_…, interaction uids, key ids.
  return seg.length >= 16 || (/\d/.test(seg) && /[A-Za-z]/.test(seg) && seg.length >= 8) || /[^A-Za-z0-9_.-]/.test(seg);
}

export function routeTemplate(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (EXACT.has(path)) return path;
  if (!PREFIXES.some((p) => path === p.replace(/\/$/, '') || path.startsWith(p))) return 'other';
  const segs = path.split('/').slice(1, 8);
  const out = segs.map((s, i) => (segs[0] === 'interaction' && i === 1 ? ':uid' : isIdLike(s) ? ':id' : s));
  return '/' + out.join('/');
}
