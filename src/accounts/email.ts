/** How Flowgate identifies an account by email: trimmed, lower-cased (lookups compare lower(email)). */
export function normalizeEmail(raw: string): string {
  return raw.trim().toLowerCase();
}

/** A deliberately loose shape check (something@domain.tld); a delivered invitation is the real proof. */
export function looksLikeEmail(email: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email);
}
