import { createHash } from 'node:crypto';

/** A stable, non-reversible tag for a grant id, carried by JWT access tokens as `gid`. */
export function grantTag(grantId: string): string {
  return createHash('sha256').update(`grant:${grantId}`).digest('base64url').slice(0, 22);
}
