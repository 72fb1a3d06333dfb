import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from './errors.js';

/**
 * CSRF tokens bound to something the server already ties to the browser (an interaction uid, a
 * dashboard session id): HMAC(secret, purpose:binding). Nothing to store; a forged form lacks it.
 */
export function csrfToken(secret: string, binding: string): string {
  return createHmac('sha256', secret).update(`csrf:${binding}`).digest('base64url');
}

export function checkCsrf(secret: string, binding: string, presented: unknown): void {
  const expected = Buffer.from(csrfToken(secret, binding));
  const got = Buffer.from(typeof presented === 'string' ? presented : '');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new AppError(403, 'CSRF_TOKEN_INVALID', 'The form has expired or did not come from this site. Reload the page and try again.');
  }
}
