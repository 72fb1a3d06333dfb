import { AppError } from '../http/errors.js';
import type { BeforeHook, RefusedHook } from '../auth/service.js';
import type { KeyValueStore } from '../storage/kv.js';
import type { RateLimitService } from './service.js';

const blockKey = (ip: string) => `rl:authblock:${ip}`;

/**
 * Guessing credentials against Flowgate's API: every refused credential counts against the caller's
 * address (rateLimits.authFailures); past the limit the address is answered 429 before any credential
 * is read, until the window lets it try again. Valid credentials never count, so a busy, correctly
 * configured service is never slowed by this.
 */
export function authFailureGuard(limits: RateLimitService, kv: KeyValueStore): { before: BeforeHook; refused: RefusedHook } {
  const refuse = (retryAfter: number) =>
    new AppError(429, 'RATE_LIMITED', `Too many invalid credentials from this address. Try again in ${retryAfter} seconds.`, { retry_after: retryAfter }, { 'Retry-After': String(retryAfter) });
  return {
    async before(req) {
      if (!limits.enabled || !req.ip) return;
      const blocked = await kv.get(blockKey(req.ip)).catch(() => null);
      if (blocked) throw refuse(Math.max(1, Number(blocked) - Math.floor(Date.now() / 1000)));
    },
    async refused(req) {
      if (!req.ip) return;
      const d = await limits.checkFixed('authFailures', `ip:${req.ip}`);
      if (!d || d.allowed) return;
      await kv.set(blockKey(req.ip), String(Math.floor(Date.now() / 1000) + d.retryAfter), d.retryAfter).catch(() => {});
      throw refuse(d.retryAfter);
    },
  };
}
