/**
 * Text that no field of Flowgate accepts: NUL (PostgreSQL text cannot hold it, and it truncates in C
 * libraries) and lone UTF-16 surrogates (not Unicode scalar values: they cannot be encoded as UTF-8,
 * so drivers and JSON encoders fail or substitute). Every reader at the edge (form and JSON bodies,
 * query strings, path parameters) refuses such input with a 400 before it reaches a service.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isUnsafeText(s: string): boolean {
  return UNSAFE.test(s);
}

/** The path (dotted) of the first string in a parsed value (keys included) that is unsafe, if any. */
export function findUnsafeText(value: unknown, path = '', depth = 0): string | undefined {
  if (typeof value === 'string') return isUnsafeText(value) ? path || '(value)' : undefined;
  if (value === null || typeof value !== 'object' || depth > 64) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = findUnsafeText(value[i], path ? `${path}.${i}` : String(i), depth + 1);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const here = path ? `${path}.${k}` : k;
    if (isUnsafeText(k)) return here;
    const bad = findUnsafeText(v, here, depth + 1);
    if (bad !== undefined) return bad;
  }
  return undefined;
}
