import http from 'node:http';
import https from 'node:https';
import { pinnedLookup, type CheckedTarget } from '../outbound/url-policy.js';

export interface SendResult {
  ok: boolean;
  status: number | null;
  latencyMs: number;
  error: string | null;
  /** The first bytes of the response body (for the deliveries view). */
  responseBody: string | null;
}

export interface SendOptions {
  timeoutMs: number;
  maxResponseBytes: number;
}

/**
 * One POST to a checked target. node:http(s) rather than fetch: the socket is opened to the checked
 * address (`pinnedLookup`), redirects are never followed (a 3xx is a failure), the whole exchange
 * is bounded by `timeoutMs`, and at most `maxResponseBytes` of the answer are read.
 */
export function sendWebhook(target: CheckedTarget, headers: Record<string, string>, body: string, opts: SendOptions): Promise<SendResult> {
  const start = performance.now();
  const mod = target.url.protocol === 'https:' ? https : http;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const finish = (r: Omit<SendResult, 'latencyMs' | 'ok'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ok = r.status !== null && r.status >= 200 && r.status < 300;
      resolve({ ...r, ok, latencyMs: Math.round(performance.now() - start) });
    };
    const req = mod.request(
      target.url,
      {
        method: 'POST',
        lookup: pinnedLookup(target),
        agent: false,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'Flowgate-Webhooks/1',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < opts.maxResponseBytes) chunks.push(c.subarray(0, opts.maxResponseBytes - size));
          size += c.length;
          if (size >= opts.maxResponseBytes) res.destroy();
        });
        const done = () => {
          const status = res.statusCode ?? null;
          const text = Buffer.concat(chunks).toString('utf8');
          const redirect = status !== null && status >= 300 && status < 400;
          finish({ status, error: redirect ? `redirect (${status}) not followed` : status !== null && status >= 300 ? `HTTP ${status}` : null, responseBody: text || null });
        };
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ status: null, error: err.code ? `${err.code}: ${err.message}` : err.message, responseBody: null }));
    req.end(body);
  });
}
