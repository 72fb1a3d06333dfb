import { describe, expect, it } from 'vitest';
import { BASE62, CHECKSUM_LENGTH, RANDOM_LENGTH, checksum, generateApiKey, looksLikeApiKey, parseApiKey, scannerRegex } from './api-key-format.js';
import { hashApiKey, hashesEqual } from './api-key-hash.js';
import { PRESETS, normalizeScopes } from '../apikeys/presets.js';

describe('API key format', () => {
  it('is <prefix><32 base62><6 base62 CRC32> for sk- and wfk_', () => {
    for (const prefix of ['sk-', 'wfk_']) {
      const key = generateApiKey(prefix);
      expect(key.startsWith(prefix)).toBe(true);
      expect(key).toHaveLength(prefix.length + RANDOM_LENGTH + CHECKSUM_LENGTH);
      expect(key.slice(prefix.length)).toMatch(/^[0-9A-Za-z]+$/);
      expect(key.slice(-CHECKSUM_LENGTH)).toBe(checksum(key.slice(0, -CHECKSUM_LENGTH)));
      expect(parseApiKey(key)).toEqual({ prefix, start: key.slice(0, prefix.length + 4), last4: key.slice(-4) });
    }
  });

  it('carries at least 190 bits of randomness', () => {
    expect(RANDOM_LENGTH * Math.log2(62)).toBeGreaterThanOrEqual(190);
    const keys = new Set(Array.from({ length: 2000 }, () => generateApiKey('sk-')));
    expect(keys.size).toBe(2000);
    // Every base62 character shows up (no truncated alphabet).
    const seen = new Set([...keys].flatMap((k) => [...k.slice(3, 3 + RANDOM_LENGTH)]));
    expect(seen.size).toBe(BASE62.length);
  });

  it('rejects every single flipped character by checksum', () => {
    const key = generateApiKey('sk-');
    for (let i = 3; i < key.length; i++) {
      const c = key[i] === 'A' ? 'B' : 'A';
      const bad = key.slice(0, i) + c + key.slice(i + 1);
      expect(looksLikeApiKey(bad)).toBe(true);
      expect(parseApiKey(bad)).toBeUndefined();
    }
    expect(parseApiKey(`${key}x`)).toBeUndefined();
    expect(parseApiKey('sk-ABCDEFGhijklmnoPQRSTuvwxyz1234567890ABCDEFG')).toBeUndefined(); // a documented example key, not one with a valid checksum
  });

  it('scanner regex finds keys in text and skips look-alikes', () => {
    const a = generateApiKey('sk-');
    const b = generateApiKey('wfk_');
    const text = `export A=${a}\nconst b = "${b}"; sk-short nope`;
    expect(text.match(scannerRegex('sk-'))).toEqual([a]);
    expect(text.match(scannerRegex('wfk_'))).toEqual([b]);
  });

  it('hashes with the pepper and compares in constant time', () => {
    const key = generateApiKey('sk-');
    const h = hashApiKey('pepper-one-0123456789', key);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(h).not.toBe(hashApiKey('pepper-two-0123456789', key));
    expect(hashesEqual(h, hashApiKey('pepper-one-0123456789', key))).toBe(true);
    expect(hashesEqual(h, hashApiKey('pepper-one-0123456789', generateApiKey('sk-')))).toBe(false);
    expect(hashesEqual(h, '')).toBe(false);
  });

  it('presets nest: read_only within read_write within full_access', () => {
    for (const s of PRESETS.read_only) expect(PRESETS.read_write).toContain(s);
    for (const s of PRESETS.read_write) expect(PRESETS.full_access).toContain(s);
    expect(PRESETS.read_write).not.toContain('api_keys:write');
    expect(PRESETS.full_access).toEqual(expect.arrayContaining(['api_keys:read', 'api_keys:write', 'webhooks:manage']));
    expect(normalizeScopes(['runs:read', 'workflows:read', 'runs:read'])).toEqual(['workflows:read', 'runs:read']);
  });
});
