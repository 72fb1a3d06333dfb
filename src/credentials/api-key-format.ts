import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * API key format: `<prefix><random><checksum>`.
 * - prefix: per deployment (`sk-` by default, `wfk_` for a workflow platform's keys): 1-10 letters/digits ending in `-` or `_`.
 * - random: 32 base62 characters drawn without bias from crypto.randomBytes: 32 × log2(62) ≈ 190.5 bits.
 * - checksum: CRC32 of `<prefix><random>`, base62, left-padded to 6 characters (62^6 > 2^32), as GitHub
 *   tokens do. A mistyped or invented key fails here, before any store is asked.
 *
 * Parsing accepts any well-formed prefix, not only the configured one, so keys issued before a
 * deployment changed its prefix keep working (the hash lookup is what decides validity).
 */
export const RANDOM_LENGTH = 32;
export const CHECKSUM_LENGTH = 6;
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const PREFIX_SOURCE = '[A-Za-z][A-Za-z0-9]{0,9}[-_]';
const KEY_SHAPE = new RegExp(`^(${PREFIX_SOURCE})([0-9A-Za-z]{${RANDOM_LENGTH}})([0-9A-Za-z]{${CHECKSUM_LENGTH}})$`);

/** The regular expression secret scanners use for keys of one deployment (documented in docs/api-keys.md). */
export function scannerRegex(prefix: string): RegExp {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  return new RegExp(`\\b${escaped}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}\\b`, 'g');
}

export function base62(n: number, width: number): string {
  let out = '';
  let v = n >>> 0;
  while (v > 0) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out.padStart(width, '0');
}

export function checksum(body: string): string {
  return base62(crc32(body), CHECKSUM_LENGTH);
}

/** Uniform base62 characters by rejection sampling (bytes >= 248 would bias `% 62`). */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function generateApiKey(prefix: string): string {
  const body = prefix + randomBase62(RANDOM_LENGTH);
  return body + checksum(body);
}

export interface ParsedApiKey {
  prefix: string;
  /** What lists show: the prefix and the first 4 random characters, e.g. `sk-AbCd`. */
  start: string;
  last4: string;
}

/** Whether a string has the shape of an API key at all (any prefix); says nothing of its checksum. */
export function looksLikeApiKey(value: string): boolean {
  return KEY_SHAPE.test(value);
}

/** Shape and checksum, no store: `undefined` for anything that is not a well-formed key. */
export function parseApiKey(value: string): ParsedApiKey | undefined {
  const m = KEY_SHAPE.exec(value);
  if (!m) return undefined;
  const [, prefix, random, sum] = m;
  if (checksum(prefix + random) !== sum) return undefined;
  return { prefix, start: prefix + random.slice(0, 4), last4: value.slice(-4) };
}

export function displayKey(start: string, last4: string): string {
  return `${start}…${last4}`;
}

/** Other members' keys: the deployment prefix is public, nothing of the secret is shown. */
export function maskedKey(prefix: string): string {
  return `${prefix}****…****`;
}
