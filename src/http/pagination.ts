import { z } from 'zod';
import { errors } from './errors.js';

/**
 * The one pagination of the JSON API: `?limit=` (1-200, default 50) and `?cursor=` (opaque, from the
 * previous page's `next_cursor`); answers `{"data": [...], "next_cursor": "..." | null}`. Cursors are
 * keyset positions (the last item's sort key), so inserts and deletes between pages neither repeat
 * nor skip items.
 */
export const MAX_PAGE = 200;
export const DEFAULT_PAGE = 50;

export const pageQueryShape = {
  cursor: z.string().min(1).max(400).optional().meta({ description: 'The `next_cursor` of the previous page' }),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(DEFAULT_PAGE).meta({ description: `Items per page (1-${MAX_PAGE}, default ${DEFAULT_PAGE})` }),
};

export const pageQuery = z.object(pageQueryShape);

export interface PageRequest {
  cursor?: string;
  limit?: number;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A position in a sorted list: its sort key parts (strings), under a name so cursors of one list fit no other. */
export function encodeCursor(list: string, key: string[]): string {
  return Buffer.from(JSON.stringify([list, ...key])).toString('base64url');
}

/** The sort key a cursor holds; 400 VALIDATION_ERROR (field `cursor`) when it is not one of this list's. */
export function decodeCursor(list: string, cursor: string, parts: number): string[] {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || v.length !== parts + 1 || v[0] !== list || !v.every((x) => typeof x === 'string' && x.length <= 200)) {
    throw errors.validation('cursor is not valid', 'cursor');
  }
  return v.slice(1) as string[];
}

function compare(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/**
 * One page of a list already sorted by `keyOf` (ascending, or descending with `desc`). Key parts must
 * sort as strings in the list's order (ISO 8601 UTC times and ids do).
 */
export function paginate<T>(list: string, items: T[], req: PageRequest, keyOf: (t: T) => string[], opts: { desc?: boolean; parts?: number } = {}): Page<T> {
  const limit = Math.min(Math.max(req.limit ?? DEFAULT_PAGE, 1), MAX_PAGE);
  let rest = items;
  if (req.cursor !== undefined) {
    const after = decodeCursor(list, req.cursor, opts.parts ?? 2);
    rest = items.filter((t) => (opts.desc ? compare(keyOf(t), after) < 0 : compare(keyOf(t), after) > 0));
  }
  const page = rest.slice(0, limit);
  return { items: page, nextCursor: rest.length > limit ? encodeCursor(list, keyOf(page[page.length - 1])) : null };
}
