import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FlowgateError, flowgateErrors } from './errors.js';

/**
 * Receiving Flowgate webhooks (Standard Webhooks, https://www.standardwebhooks.com):
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>`,
 * the key being the base64-decoded part of the `whsec_...` secret after the prefix. Several
 * space-separated signatures may be present (secret rotation); one match is enough.
 */
export interface VerifiedWebhook<T = Record<string, unknown>> {
  id: string;
  /** Unix seconds from `webhook-timestamp`. */
  timestamp: number;
  type: string;
  data: T;
  /** The event's own time (body `timestamp`). */
  occurredAt: string;
}

export interface VerifyOptions {
  /** Accepted clock difference in seconds, both ways (default 300: Standard Webhooks' 5 minutes). */
  toleranceSeconds?: number;
  now?: () => number;
}

export type HeaderSource = Record<string, string | string[] | undefined> | { get(name: string): string | null };

const webhookErrors = {
  missingHeaders: flowgateErrors.missingWebhookHeaders,
  badSignature: flowgateErrors.badWebhookSignature,
  staleTimestamp: flowgateErrors.staleWebhook,
  replayed: flowgateErrors.replayedWebhook,
  badBody: flowgateErrors.badWebhookBody,
  tooLarge: flowgateErrors.tooLarge,
};

function header(h: HeaderSource, name: string): string | undefined {
  if (typeof (h as { get?: unknown }).get === 'function') return (h as { get(n: string): string | null }).get(name) ?? undefined;
  const v = (h as Record<string, string | string[] | undefined>)[name] ?? (h as Record<string, string | string[] | undefined>)[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies a webhook's signature and timestamp; returns the event. `secret` may be a list (accept
 * either while you rotate). Throws a FlowgateError: 400 MISSING_WEBHOOK_HEADERS,
 * 401 INVALID_WEBHOOK_SIGNATURE, 401 WEBHOOK_TIMESTAMP_OUT_OF_RANGE, 400 INVALID_WEBHOOK_BODY.
 * Replay refusal needs state: use `webhookReceiver` or call a `ReplayStore` yourself with the id.
 */
export function verifyWebhook<T = Record<string, unknown>>(secret: string | string[], headers: HeaderSource, rawBody: string | Buffer, opts: VerifyOptions = {}): VerifiedWebhook<T> {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const sig = header(headers, 'webhook-signature');
  const missing = [!id && 'webhook-id', !ts && 'webhook-timestamp', !sig && 'webhook-signature'].filter(Boolean) as string[];
  if (missing.length) throw webhookErrors.missingHeaders(missing);
  const tolerance = opts.toleranceSeconds ?? 300;
  const timestamp = Number(ts);
  const now = Math.floor((opts.now ?? Date.now)() / 1000);
  if (!/^\d{1,12}$/.test(ts!) || Math.abs(now - timestamp) > tolerance) throw webhookErrors.staleTimestamp(tolerance);
  const body = typeof rawBody === 'string' ? Buffer.from(rawBody) : rawBody;
  const presented = sig!.split(' ').filter((s) => s.startsWith('v1,')).map((s) => s.slice(3));
  let ok = false;
  for (const s of Array.isArray(secret) ? secret : [secret]) {
    const expected = createHmac('sha256', keyOf(s)).update(`${id}.${ts}.`).update(body).digest('base64');
    // Every candidate is compared (no early exit on the first secret), each in constant time.
    for (const p of presented) ok = safeEqual(p, expected) || ok;
  }
  if (!ok) throw webhookErrors.badSignature();
  let event: { type?: unknown; timestamp?: unknown; data?: unknown };
  try {
    event = JSON.parse(body.toString('utf8'));
  } catch {
    throw webhookErrors.badBody();
  }
  if (!event || typeof event.type !== 'string' || typeof event.data !== 'object' || event.data === null) throw webhookErrors.badBody();
  return { id: id!, timestamp, type: event.type, data: event.data as T, occurredAt: String(event.timestamp ?? '') };
}

/** The simple form: `X-Flowgate-Signature: sha256=<hex HMAC-SHA256(key, raw body)>` (no timestamp, no replay protection). */
export function verifyFlowgateSignature(secret: string | string[], signatureHeader: string | undefined, rawBody: string | Buffer): boolean {
  if (!signatureHeader) return false;
  const presented = signatureHeader.split(/[ ,]+/).filter((s) => s.startsWith('sha256='));
  let ok = false;
  for (const s of Array.isArray(secret) ? secret : [secret]) {
    const expected = `sha256=${createHmac('sha256', keyOf(s)).update(rawBody).digest('hex')}`;
    for (const p of presented) ok = safeEqual(p, expected) || ok;
  }
  return ok;
}

/** Remembers webhook ids. `claim` answers true the first time an id is seen, false after (atomically). */
export interface ReplayStore {
  claim(id: string, ttlSeconds: number): Promise<boolean>;
}

/** One process's memory. For several instances use a shared store (e.g. Redis `SET id 1 NX EX ttl`). */
export class MemoryReplayStore implements ReplayStore {
  private readonly seen = new Map<string, number>();

  async claim(id: string, ttlSeconds: number): Promise<boolean> {
    const now = Date.now();
    if (this.seen.size > 10_000) for (const [k, exp] of this.seen) if (exp <= now) this.seen.delete(k);
    const exp = this.seen.get(id);
    if (exp !== undefined && exp > now) return false;
    this.seen.set(id, now + ttlSeconds * 1000);
    return true;
  }
}

export interface WebhookReceiverOptions extends VerifyOptions {
  secret: string | string[];
  /** Default: a MemoryReplayStore. Ids are kept twice the tolerance, past which the timestamp check refuses anyway. */
  replayStore?: ReplayStore;
  maxBodyBytes?: number;
}

/**
 * Verifies signature and timestamp, then refuses a `webhook-id` seen before. The id is claimed only
 * after the signature matched, so forged requests cannot burn real ids. Throws a FlowgateError.
 */
export function webhookVerifier(opts: WebhookReceiverOptions): (headers: HeaderSource, rawBody: Buffer) => Promise<VerifiedWebhook> {
  const store = opts.replayStore ?? new MemoryReplayStore();
  const ttl = 2 * (opts.toleranceSeconds ?? 300);
  return async (headers, rawBody) => {
    const event = verifyWebhook(opts.secret, headers, rawBody, opts);
    if (!(await store.claim(event.id, ttl))) throw webhookErrors.replayed(event.id);
    return event;
  };
}

/** Reads a Node request body up to `max` bytes (413 PAYLOAD_TOO_LARGE past it). */
export async function readNodeBody(req: IncomingMessage, max: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] || 0) > max) throw webhookErrors.tooLarge(max);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw webhookErrors.tooLarge(max);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

export { FlowgateError };
