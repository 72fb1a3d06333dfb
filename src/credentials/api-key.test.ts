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
    expect(most).toBe(3);
  });
});
