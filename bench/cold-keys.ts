// Many customers' keys, most of them in no cache: written straight to the table as the API stores
// them (the same format, prefix and hash), so that 20,000 take a second, not minutes. Runs in the
// load generator's process, so that the measured server's memory holds none of it.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { generateApiKey, parseApiKey } from '../src/credentials/api-key-format.js';
import { hashApiKey } from '../src/credentials/api-key-hash.js';

export async function seedColdKeys(o: { databaseUrl: string; orgId: string; pepper: string; keyPrefix: string; count: number }): Promise<string[]> {
  const keys: string[] = [];
  const c = new pg.Client({ connectionString: o.databaseUrl });
  await c.connect();
  try {
    for (let start = 0; start < o.count; start += 5000) {
      const batch = Array.from({ length: Math.min(5000, o.count - start) }, () => generateApiKey(o.keyPrefix));
      const parsed = batch.map((k) => parseApiKey(k)!);
      keys.push(...batch);
      await c.query(
        `INSERT INTO api_keys (id, org_id, name, scopes, key_hash, key_start, key_last4)
         SELECT i, $1, 'cold', ARRAY['workflows:read'], h, s, l FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS t(i, h, s, l)`,
        [o.orgId, batch.map(() => randomUUID()), batch.map((k) => hashApiKey(o.pepper, k)), parsed.map((p) => p.start), parsed.map((p) => p.last4)],
      );
    }
    await c.query('ANALYZE api_keys');
  } finally {
    await c.end();
  }
  return keys;
}
