import type { Context, Next } from 'koa';

/**
 * A strict policy for Flowgate's own pages: scripts and styles only from this origin, no inline
 * script, no framing. `form-action` is left out on purpose: browsers apply it to the redirects that
 * follow a form post, and the OAuth flow redirects to the client's (other-origin) redirect URI.
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  await next();
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  if (ctx.response.is('html')) {
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Cache-Control', 'no-store');
  }
}
