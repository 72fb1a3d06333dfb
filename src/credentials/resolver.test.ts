import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Provider from 'oidc-provider';
import { generateApiKey } from './api-key-format.js';
import { hashApiKey } from './api-key-hash.js';
import { exchangeApiKey, type ExchangeDeps } from '../endpoints/token-exchange.js';
import { activeSigningKey, ensureKeys, readKeys } from '../oauth/signing-keys.js';
import type { ClientRows } from '../oauth/client-rows.js';
import { CacheRegistry } from '../storage/cache.js';
import { tags } from '../storage/invalidation.js';
import { MemoryKeyValueStore } from '../storage/memory-kv.js';
import type { ApiKeyRow, ApiKeyRows } from './api-key.js';
import { ClientDirectory } from './client-directory.js';
import { ClientKeys } from './client-keys.js';
import { OwnJwtVerifier } from './own-jwt.js';
import { CredentialResolver } from './resolver.js';
import type { Resolution } from './types.js';

const ISSUER = 'https://auth.example.test';
const AUDIENCE = `${ISSUER}/api`;
const PEPPER = 'pepper-for-unit-tests';

let keysDir: string;
let kv: MemoryKeyValueStore;
beforeAll(async () => {
  keysDir = mkdtempSync(path.join(os.tmpdir(), 'fg-resolver-'));
  await ensureKeys(keysDir);
  kv = new MemoryKeyValueStore();
});
afterAll(async () => {
  await kv.close();
  rmSync(keysDir, { recursive: true, force: true });
});

/** API key rows in memory, with a count of store reads (the real ones are PostgreSQL's). */
class KeyTable {
  rows = new Map<string, ApiKeyRow>();
  reads = 0;
  add(secret: string, over: Partial<ApiKeyRow> = {}): ApiKeyRow {
    const row: ApiKeyRow = {
      id: crypto.randomUUID(),
      org_id: 'org-1',
      team_id: null,
      workflow_id: 'wf-1',
      name: 'k',
      scopes: ['workflows:read', 'workflows:write'],
      key_hash: hashApiKey(PEPPER, secret),
      previous_key_hash: null,
      previous_expires_at: null,
      created_by: null,
      expires_at: null,
      revoked_at: null,
      rate_limit: null,
      org_plan: 'free',
      org_limits: null,
      allow_query: null,
      creator_role: null,
      ...over,
    };
    this.rows.set(row.id, row);
    return row;
  }
  asRows(): ApiKeyRows {
    return {
      forSecret: async (presented: string) => {
        this.reads++;
        const hash = hashApiKey(PEPPER, presented);
        const row = [...this.rows.values()].find((r) => r.key_hash === hash || r.previous_key_hash === hash) ?? null;
        return { row: row && { ...row }, hash };
      },
      get: async (id: string) => {
        this.reads++;
        const row = this.rows.get(id);
        return row ? { ...row } : null;
      },
    } as unknown as ApiKeyRows;
  }
}

function build(table: KeyTable) {
  const caches = new CacheRegistry();
  const uses: string[] = [];
  const resolver = new CredentialResolver({
    issuer: ISSUER,
    apiAudience: AUDIENCE,
    kv,
    provider: { RefreshToken: { find: async () => undefined } } as unknown as Provider,
    ownJwts: new OwnJwtVerifier(keysDir, ISSUER, AUDIENCE),
    keys: table.asRows(),
    clients: new ClientDirectory({ get: async () => null } as unknown as ClientRows),
    clientKeys: new ClientKeys(),
    grantOrg: async () => null,
    membership: async () => null,
    resolved: caches.create<Resolution>('resolved', { max: 100, ttlMs: 10_000 }),
    refused: caches.create<Resolution>('refused', { max: 100, ttlMs: 5_000 }),
    onApiKeyUse: (id) => uses.push(id),
  });
  const exchange: ExchangeDeps = { issuer: ISSUER, apiAudience: AUDIENCE, signingKey: activeSigningKey(readKeys(keysDir)), pepper: PEPPER, resolver, ttlSeconds: 300 };
  return { resolver, caches, uses, exchange };
}

describe('CredentialResolver', () => {
  it('reads an API key of any prefix once, then answers from the cache, counting every use', async () => {
    const table = new KeyTable();
    const { resolver, uses } = build(table);
    const old = generateApiKey('sk-');
    const renamed = generateApiKey('wfk_');
    const a = table.add(old);
    table.add(renamed);
    for (const secret of [old, renamed]) expect(await resolver.resolve(secret)).toMatchObject({ ok: true, kind: 'api_key', orgId: 'org-1', workflowId: 'wf-1' });
    await resolver.resolve(old);
    expect(table.reads).toBe(2);
    expect(uses.filter((u) => u === a.id)).toHaveLength(2);
  });

  it('says why a found key is refused, and forgets an unknown one quickly', async () => {
    const table = new KeyTable();
    const { resolver } = build(table);
    const revoked = generateApiKey('sk-');
    const expired = generateApiKey('sk-');
    const r = table.add(revoked, { revoked_at: new Date() });
    const e = table.add(expired, { expires_at: new Date(Date.now() - 1000) });
    expect(await resolver.resolve(revoked)).toMatchObject({ ok: false, status: 'revoked', keyId: r.id, orgId: 'org-1' });
    expect(await resolver.resolve(expired)).toMatchObject({ ok: false, status: 'expired', keyId: e.id, expiredAt: e.expires_at });
    expect(await resolver.resolve(generateApiKey('sk-'))).toEqual({ ok: false, status: 'unknown', kind: 'api_key' });
    expect(await resolver.resolve('not a credential!')).toMatchObject({ ok: false, status: 'malformed' });
    expect(await resolver.resolve('x'.repeat(9000))).toMatchObject({ ok: false, status: 'malformed' });
  });

  it('a key created by a member who left is refused with everything derived from it', async () => {
    const table = new KeyTable();
    const { resolver, exchange } = build(table);
    const secret = generateApiKey('sk-');
    table.add(secret, { created_by: 'user-1', creator_role: null });
    expect(await resolver.resolve(secret)).toMatchObject({ ok: false, status: 'revoked' });
    await expect(exchangeApiKey(exchange, new URLSearchParams({ subject_token: secret, subject_token_type: 'urn:flowgate:params:oauth:token-type:api-key' }), null)).rejects.toMatchObject({ error: 'invalid_request' });
  });

  it('an exchanged token carries the key\'s current scopes and dies when the key\'s row changes', async () => {
    const table = new KeyTable();
    const { resolver, caches, exchange } = build(table);
    const secret = generateApiKey('sk-');
    const row = table.add(secret);
    const reply = await exchangeApiKey(exchange, new URLSearchParams({ subject_token: secret, subject_token_type: 'urn:flowgate:params:oauth:token-type:api-key' }), null);
    const jwt = (reply.body as { access_token: string }).access_token;
    expect(await resolver.resolve(jwt)).toMatchObject({ ok: true, kind: 'exchanged_token', keyId: row.id, workflowId: 'wf-1', scopes: ['workflows:read', 'workflows:write'] });
    table.rows.get(row.id)!.scopes = ['workflows:read'];
    caches.invalidate([tags.key(row.id)]);
    expect(await resolver.resolve(jwt)).toMatchObject({ ok: true, scopes: ['workflows:read'] });
    // Rolled without grace: the secret the token was bought with is gone.
    table.rows.get(row.id)!.key_hash = hashApiKey(PEPPER, generateApiKey('sk-'));
    caches.invalidate([tags.key(row.id)]);
    expect(await resolver.resolve(jwt)).toMatchObject({ ok: false, status: 'rolled', kind: 'exchanged_token', keyId: row.id });
  });

  it('a secret rolled away stays valid only for its grace, and is never cached past it', async () => {
    const table = new KeyTable();
    const { resolver } = build(table);
    const old = generateApiKey('sk-');
    table.add(generateApiKey('sk-'), { previous_key_hash: hashApiKey(PEPPER, old), previous_expires_at: new Date(Date.now() + 150) });
    expect(await resolver.resolve(old)).toMatchObject({ ok: true });
    await new Promise((r) => setTimeout(r, 200));
    expect(await resolver.resolve(old)).toMatchObject({ ok: false, status: 'rolled' });
  });
});
