import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { publicJwks, readKeys } from '../oauth/signing-keys.js';

/** Never re-read the key file more often than this, whatever unknown `kid`s are presented. */
const RELOAD_INTERVAL_MS = 5_000;

/**
 * Verifies the JWTs Flowgate signs itself (RFC 9068 access tokens and exchanged tokens): signature by
 * one of the deployment's published keys, `typ` at+jwt (RFC 9068 §4), issuer, audience (the workflow
 * API, the only resource these tokens are issued for) and algorithm allow-list. After a key rotation
 * by another process the key file is read again once, at most every few seconds.
 */
export class OwnJwtVerifier {
  private keySet: ReturnType<typeof createLocalJWKSet>;
  private loadedAt = 0;

  constructor(
    private readonly keysDir: string,
    private readonly issuer: string,
    private readonly audience: string,
  ) {
    this.keySet = this.load();
  }

  /** The verified payload, or undefined for anything that does not verify. */
  async verify(token: string): Promise<JWTPayload | undefined> {
    try {
      return await this.once(token);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || Date.now() - this.loadedAt < RELOAD_INTERVAL_MS) return undefined;
      this.keySet = this.load();
      try {
        return await this.once(token);
      } catch {
        return undefined;
      }
    }
  }

  private async once(token: string): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, this.keySet, {
      issuer: this.issuer,
      audience: this.audience,
      typ: 'at+jwt',
      algorithms: ['ES256', 'RS256'],
      requiredClaims: ['exp', 'jti'],
    });
    return payload;
  }

  private load() {
    this.loadedAt = Date.now();
    return createLocalJWKSet(publicJwks(readKeys(this.keysDir)) as Parameters<typeof createLocalJWKSet>[0]);
  }
}
