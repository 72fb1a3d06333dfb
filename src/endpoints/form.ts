import type { IncomingMessage } from 'node:http';
import { AppError } from '../http/errors.js';
import { readRawBody } from '../http/raw-body.js';
import { isUnsafeText } from '../http/unsafe-text.js';
import { oauthErrors } from '../http/oauth-error.js';

/**
 * Parameters that may appear more than once: RFC 8707 §2 (`resource`) and RFC 8693 §2.1 (`audience`,
 * `resource`). Every other one MUST NOT (RFC 6749 §3.1, §3.2).
 */
const REPEATABLE = new Set(['resource', 'audience']);

/** Checks the media type of a form endpoint's request (RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1). */
export function isForm(contentType: string | undefined): boolean {
  return (contentType ?? '').toLowerCase().split(';')[0].trim() === 'application/x-www-form-urlencoded';
}

/**
 * Reads and checks a form body once: at most `limit` bytes, no repeated parameter, no NUL or lone
 * surrogate anywhere. Returns the raw text too (the provider reads an already-consumed body from it).
 */
export async function readForm(req: IncomingMessage, limit: number): Promise<{ raw: string; params: URLSearchParams }> {
  let raw: string;
  try {
    raw = (await readRawBody(req, limit)).toString('utf8');
  } catch (err) {
    if (err instanceof AppError && err.status === 413) throw oauthErrors.tooLarge();
    if (err instanceof AppError && err.status < 500) throw oauthErrors.invalidRequest(err.message);
    throw err;
  }
  return { raw, params: checkedParams(raw) };
}

export function checkedParams(raw: string): URLSearchParams {
  const params = new URLSearchParams(raw);
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (isUnsafeText(name) || isUnsafeText(value)) throw oauthErrors.invalidRequest('parameters must not contain NUL or unpaired surrogate characters');
    if (seen.has(name) && !REPEATABLE.has(name)) throw oauthErrors.invalidRequest(`parameter ${JSON.stringify(name.slice(0, 40))} must not be repeated`);
    seen.add(name);
  }
  return params;
}
