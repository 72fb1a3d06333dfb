import { describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { Cache } from '../storage/cache.js';
import { generateApiKey } from './api-key-format.js';
import { ApiKeyRows, type ApiKeyRow } from './api-key.js';

describe('ApiKeyRows', () => {
  it('keeps at most the configured number of secret look-ups in flight, however many arrive', async () => {
    let inFlight = 0;
    let most = 0;
    const ds = {
      query: async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return [];
      },
    } as unknown as DataSource;
    const rows = new ApiKeyRows(ds, 'pepper-pepper-pepper', new Cache<ApiKeyRow | null>('t', { max: 10, ttlMs: 1000 }), 3);
    const found = await Promise.all(Array.from({ length: 40 }, () => rows.forSecret(generateApiKey('sk-'))));
    expect(found.every((f) => f.row === null)).toBe(true);
    expect(most).toBeLessThanOrEqual(3);
  });

  it('looks up secrets asked for together in one statement, and answers each with its own row', async () => {
    const statements: string[][] = [];
    const keys = Array.from({ length: 10 }, () => generateApiKey('sk-'));
    const ds = {
      query: async (_sql: string, [hashes]: [string[]]) => {
        statements.push(hashes);
        await new Promise((r) => setTimeout(r, 5));
        // Every other key exists; the third one is found by its previous secret.
        return hashes.filter((_, i) => i % 2 === 0).map((h, i) => ({ id: `id-${h.slice(0, 8)}`, key_hash: i === 1 ? 'other' : h, previous_key_hash: i === 1 ? h : null }));
      },
    } as unknown as DataSource;
    const rows = new ApiKeyRows(ds, 'pepper-pepper-pepper', new Cache<ApiKeyRow | null>('t', { max: 10, ttlMs: 1000 }), 2);
    const found = await Promise.all(keys.map((k) => rows.forSecret(k)));
    expect(statements).toHaveLength(1);
    expect(found.map((f) => (f.row ? f.row.id : null))).toEqual(found.map((f, i) => (i % 2 === 0 ? `id-${f.hash.slice(0, 8)}` : null)));
  });
});
