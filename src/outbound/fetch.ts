import http from 'node:http';
import https from 'node:https';
import { checkOutboundUrl, pinnedLookup, type OutboundPolicy } from './url-policy.js';

/** What the fetchers Flowgate hands this to pass (oidc-provider's `fetch` option, jose's customFetch). */
export interface OutboundInit {
  method?: string;
  headers?: HeadersInit;
  body?: string | Uint8Array | null;
  signal?: AbortSignal | null;
}

export type OutboundFetch = (url: string | URL, init?: OutboundInit) => Promise<Response>;

export interface OutboundFetchOptions {
  /** Upper bound for the whole exchange, whatever signal the caller gives. */
  timeoutMs?: number;
  /** Larger answers are cut off and the request fails (a JWKS is a few kilobytes). */
  maxResponseBytes?: number;
}

const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * A `fetch` for requests Flowgate makes on a tenant's behalf (a client's `jwks_uri`): the URL passes
 * the outbound policy (./url-policy.ts) and the socket goes to the very address that was checked, so
 * neither a private address nor DNS rebinding can aim it inside the network. Redirects are never
 * followed (a 3xx is returned as is, and the callers treat it as a failure). Built on node:http(s)
 * rather than the global fetch, whose connection pool cannot be pinned to an address without
 * reaching into undici's internals.
 */
export function outboundFetch(policy: OutboundPolicy, opts: OutboundFetchOptions = {}): OutboundFetch {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxResponseBytes ?? 512 * 1024;
  return async (input, init = {}) => {
    const target = await checkOutboundUrl(String(input), policy, 'url');
    const headers: Record<string, string> = {};
    new Headers(init.headers ?? {}).forEach((value, name) => {
      if (value !== '') headers[name] = value;
    });
    const signals = [AbortSignal.timeout(timeoutMs), ...(init.signal ? [init.signal] : [])];
    const signal = AbortSignal.any(signals);
    signal.throwIfAborted();
    const mod = target.url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const req = mod.request(target.url, { method: init.method ?? 'GET', headers, lookup: pinnedLookup(target), agent: false, signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            res.destroy(new Error(`response larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 502;
          const out = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) out.append(name, v);
          }
          resolve(new Response(NULL_BODY.has(status) ? null : Buffer.concat(chunks, size), { status, statusText: res.statusMessage, headers: out }));
        });
      });
      req.on('error', reject);
      req.end(init.body ?? undefined);
    });
  };
}
