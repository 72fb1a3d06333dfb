import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';

/**
 * Signing keys live in `<keysDir>/jwks.private.json` (git-ignored). Every instance of a deployment
 * reads the same file (or the same mounted secret), so all sign with and publish the same set.
 *
 * oidc-provider signs with the first key of the wanted algorithm, so the active keys come first.
 * Retired keys stay published (verify-only) until every token they signed has expired.
 */
export interface StoredKey extends JWK {
  kid: string;
  alg: 'ES256' | 'RS256';
  use: 'sig';
  created_at: number;
  retired_at?: number;
}

interface KeyFile {
  keys: StoredKey[];
}

export const SIGNING_ALGS = ['ES256', 'RS256'] as const;

export function keyFilePath(keysDir: string): string {
  return path.join(keysDir, 'jwks.private.json');
}

export function readKeys(keysDir: string): StoredKey[] {
  const file = keyFilePath(keysDir);
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, 'utf8')) as KeyFile).keys;
}

function writeKeys(keysDir: string, keys: StoredKey[]): void {
  mkdirSync(keysDir, { recursive: true });
  const file = keyFilePath(keysDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ keys }, null, 2), { mode: 0o600 });
  renameSync(tmp, file);
}

async function newKey(alg: 'ES256' | 'RS256'): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' && { modulusLength: 2048 }) });
  const jwk = await exportJWK(privateKey);
  const kid = (await calculateJwkThumbprint(jwk)).slice(0, 16);
  return { ...jwk, kid, alg, use: 'sig', created_at: Math.floor(Date.now() / 1000) };
}

/**
 * Creates the key set when none exists; returns whether this process did. Several instances may
 * start at once on an empty keys directory (a shared volume): each writes its candidate set to a
 * private file and publishes it with link(2), which fails when the file already exists, so exactly
 * one set wins and every other instance discards its own and reads the winner's. The file is
 * complete before it becomes visible under its name.
 */
export async function ensureKeys(keysDir: string): Promise<boolean> {
  if (readKeys(keysDir).length > 0) return false;
  const candidate = [await newKey('ES256'), await newKey('RS256')];
  mkdirSync(keysDir, { recursive: true });
  const file = keyFilePath(keysDir);
  const tmp = `${file}.${process.pid}.${Date.now()}.new`;
  writeFileSync(tmp, JSON.stringify({ keys: candidate }, null, 2), { mode: 0o600 });
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // An existing file with an empty set (created by hand) is replaced.
    if (readKeys(keysDir).length > 0) return false;
    renameSync(tmp, file);
    return true;
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
}

/**
 * New active keys for every algorithm; the previous ones are retired (kept for verification).
 * Retired keys whose retirement is older than `maxTokenLifetime` are dropped: nothing they signed
 * can still be valid.
 */
export async function rotateKeys(keysDir: string, maxTokenLifetime: number): Promise<{ added: StoredKey[]; removed: string[] }> {
  const now = Math.floor(Date.now() / 1000);
  const current = readKeys(keysDir);
  const added = [await newKey('ES256'), await newKey('RS256')];
  const kept: StoredKey[] = [];
  const removed: string[] = [];
  for (const k of current) {
    const retiredAt = k.retired_at ?? now;
    if (now - retiredAt > maxTokenLifetime) removed.push(k.kid);
    else kept.push({ ...k, retired_at: retiredAt });
  }
  writeKeys(keysDir, [...added, ...kept]);
  return { added, removed };
}

/** The set handed to oidc-provider: active keys first, metadata stripped. */
export function providerJwks(keys: StoredKey[]): { keys: JWK[] } {
  const active = keys.filter((k) => !k.retired_at);
  const retired = keys.filter((k) => k.retired_at);
  return {
    keys: [...active, ...retired].map(({ created_at: _c, retired_at: _r, ...jwk }) => jwk),
  };
}

export function publicView(k: StoredKey) {
  return {
    kid: k.kid,
    alg: k.alg,
    status: k.retired_at ? 'retired' : 'active',
    created_at: new Date(k.created_at * 1000).toISOString(),
    ...(k.retired_at && { retired_at: new Date(k.retired_at * 1000).toISOString() }),
  };
}

/** The public halves only, for verifying Flowgate's own tokens in-process. */
export function publicJwks(keys: StoredKey[]): { keys: JWK[] } {
  return {
    keys: keys.map((k) =>
      k.kty === 'EC'
        ? { kty: k.kty, crv: k.crv, x: k.x, y: k.y, kid: k.kid, alg: k.alg, use: 'sig' }
        : { kty: k.kty, n: k.n, e: k.e, kid: k.kid, alg: k.alg, use: 'sig' },
    ),
  };
}

/** The key Flowgate signs its own JWTs with outside the provider (exchanged tokens). */
export function activeSigningKey(keys: StoredKey[], alg: 'ES256' | 'RS256' = 'ES256'): StoredKey {
  const key = keys.find((k) => !k.retired_at && k.alg === alg);
  if (!key) throw new Error(`no active ${alg} signing key`);
  return key;
}
