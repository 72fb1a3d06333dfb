import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { AuditLog, Actor } from '../audit/service.js';
import { parseApiKey } from '../credentials/api-key-format.js';
import { hashApiKey } from '../credentials/api-key-hash.js';
import { revokeKeysBySecretHash } from '../storage/queries/api-keys.js';

export interface LeakReport {
  token: string;
  type?: string;
  url?: string;
  source?: string;
}

export class LeakReportAuthError extends Error {}

/**
 * Leaked-key reports from secret scanners, as GitHub's secret-scanning partner programme sends them:
 * a JSON array of `{token, type, url, source}`, signed (ECDSA P-256, SHA-256, DER, base64) with the
 * scanner's private key; the scanner's public keys are configured by identifier
 * (SECRET_SCANNER_PUBLIC_KEYS). Every reported key that matches a live key (its current secret, or
 * its previous secret within a roll's grace period) is revoked at once and `api_key.leaked` is
 * recorded for its organization, in one transaction.
 */
export class LeakedKeysService {
  private readonly keys = new Map<string, KeyObject>();

  constructor(
    private readonly ds: DataSource,
    private readonly audit: AuditLog,
    private readonly pepper: string,
    scannerPublicKeys: Record<string, string>,
    private readonly invalidate: (keyId: string) => Promise<void>,
  ) {
    for (const [id, pem] of Object.entries(scannerPublicKeys)) {
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
        throw new Error(`secret scanner key "${id}" must be an ECDSA P-256 public key`);
      }
      this.keys.set(id, key);
    }
  }

  /** Throws LeakReportAuthError unless `signature` (base64 DER) by the key `keyId` signs `raw`. */
  authenticate(keyId: string | undefined, signature: string | undefined, raw: Buffer): void {
    const key = keyId ? this.keys.get(keyId) : undefined;
    if (!key || !signature) throw new LeakReportAuthError('unknown scanner key or missing signature');
    let ok = false;
    try {
      ok = verify('sha256', raw, { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
    } catch {
      ok = false;
    }
    if (!ok) throw new LeakReportAuthError('signature does not verify');
  }

  /** Revokes matching live keys; returns how many were revoked (never told to the reporter). */
  async report(actor: Actor, reports: LeakReport[]): Promise<number> {
    let revoked = 0;
    for (const r of reports) {
      // Made-up or mistyped strings fail the checksum and never reach the store.
      if (!parseApiKey(r.token)) continue;
      const hash = hashApiKey(this.pepper, r.token);
      const ids = await this.ds.transaction(async (m) => {
        const rows = await revokeKeysBySecretHash(m, hash);
        for (const k of rows) {
          await this.audit.record(
            actor,
            { orgId: k.org_id, action: 'api_key.leaked', targetType: 'api_key', targetId: k.id, details: { name: k.name, revoked: true, found_at: r.url ?? null, source: r.source ?? null } },
            m,
          );
        }
        return rows.map((k) => k.id);
      });
      for (const id of ids) await this.invalidate(id);
      revoked += ids.length;
    }
    return revoked;
  }
}
