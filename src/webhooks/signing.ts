import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com, "Signature scheme"):
 * `webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`, the secret being
 * the base64-decoded part after `whsec_`. Several signatures are space-separated (secret rotation).
 * Flowgate also sends `X-Flowgate-Signature: sha256=<hex HMAC-SHA256(secret, body)>` (the simpler
 * form many receivers already verify), with the same secret bytes.
 */
export const SECRET_PREFIX = 'whsec_';

/** `whsec_` + base64 of 32 random bytes (Standard Webhooks recommends 24 to 64). */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

export function secretBytes(secret: string): Buffer {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(b64, 'base64');
}

export function standardSignature(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', secretBytes(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export function hexSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secretBytes(secret)).update(body).digest('hex')}`;
}

/** The signing headers for one attempt; `secrets[0]` is the current secret. */
export function signatureHeaders(secrets: string[], id: string, timestamp: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => standardSignature(s, id, timestamp, body)).join(' '),
    'x-flowgate-signature': secrets.map((s) => hexSignature(s, body)).join(' '),
  };
}
