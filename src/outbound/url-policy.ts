import { lookup as dnsLookup } from 'node:dns/promises';
import net from 'node:net';

/**
 * The one outbound-URL policy: every URL Flowgate itself requests on a tenant's behalf (webhook
 * deliveries, a client's `jwks_uri`, for both oidc-provider's and Flowgate's key fetchers) passes it.
 * A URL is refused when its scheme is not http(s) or when any address its host resolves to is
 * loopback, private, link-local (including the cloud metadata address 169.254.169.254), CGNAT,
 * multicast, unspecified, reserved or documentation space, in IPv4 or IPv6 (ULA fc00::/7, link-local
 * fe80::/10, the local-use NAT64 prefix 64:ff9b:1::/48 of RFC 8215), including IPv4 addresses
 * embedded in IPv6 (IPv4-mapped ::ffff:0:0/96, SIIT IPv4-translated ::ffff:0:0:0/96 of RFC 6145,
 * NAT64 64:ff9b::/96, 6to4 2002::/16, IPv4-compatible ::/96). The request then connects to the very
 * address that was checked (`pinnedLookup`), so DNS rebinding between the check and the connection
 * cannot swap it.
 *
 * Refusals never say which address a name resolved to, nor whether it resolved at all: an answer that
 * did would let a tenant map the internal network's DNS through the registration form.
 */
export class UnsafeUrlError extends Error {
  constructor(
    readonly reason: 'invalid_url' | 'scheme' | 'https_required' | 'credentials' | 'forbidden_address',
    message: string,
  ) {
    super(message);
  }
}

const blocked4 = new net.BlockList();
for (const [a, p] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT (RFC 6598)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) blocked4.addSubnet(a, p, 'ipv4');

const blocked6 = new net.BlockList();
for (const [a, p] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID...)
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215 §4): translates to the operator's own IPv4 network
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) blocked6.addSubnet(a, p, 'ipv6');

/** Expands an IPv6 literal (with an optional dotted-quad tail) into eight 16-bit groups. */
function ipv6Groups(addr: string): number[] | undefined {
  let a = addr.split('%')[0].toLowerCase();
  const dotted = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (dotted) {
    const b = dotted.slice(1).map(Number);
    if (b.some((x) => x > 255)) return undefined;
    a = `${a.slice(0, dotted.index)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail, ...rest] = a.split('::');
  if (rest.length) return undefined;
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : undefined;
  const groups = t === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => parseInt(g, 16));
}

function v4FromGroups(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
export function embeddedIPv4(addr: string): string | undefined {
  const g = ipv6Groups(addr);
  if (!g) return undefined;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) return v4FromGroups(g[6], g[7]); // ::ffff:a.b.c.d
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return v4FromGroups(g[6], g[7]); // SIIT ::ffff:0:a.b.c.d (RFC 6145)
  if (zero(0, 6) && (g[6] !== 0 || g[7] > 1)) return v4FromGroups(g[6], g[7]); // ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4FromGroups(g[6], g[7]); // NAT64
  if (g[0] === 0x2002) return v4FromGroups(g[1], g[2]); // 6to4
  return undefined;
}

/** True when an IP address must never be the target of an outbound request. */
export function isForbiddenAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked4.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIPv4(address);
    if (v4 !== undefined) return blocked4.check(v4, 'ipv4');
    return blocked6.check(address.split('%')[0], 'ipv6');
  }
  return true; // not an IP at all: refuse
}

export interface CheckedTarget {
  url: URL;
  /** The host name as written, without IPv6 brackets. */
  host: string;
  /** The address that was checked; delivery connects to this one. */
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

export interface OutboundPolicy {
  /**
   * Development and tests only (OUTBOUND_ALLOW_PRIVATE_NETWORKS): private addresses and plain http
   * are accepted; the scheme and credentials rules always apply.
   */
  allowPrivateNetworks: boolean;
  /** The resolver (tests); the system's by default. */
  resolve?: Resolver;
}

/**
 * Parses and checks an outbound URL; `label` names the field in messages (`url`, `jwks_uri`).
 * Resolves to the target to connect to, or throws UnsafeUrlError.
 */
export async function checkOutboundUrl(raw: string, policy: OutboundPolicy, label = 'url'): Promise<CheckedTarget> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError('invalid_url', `${label} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UnsafeUrlError('scheme', `${label} scheme "${url.protocol.replace(/:$/, '')}" is not allowed; use https`);
  }
  if (url.username || url.password) throw new UnsafeUrlError('credentials', `${label} must not contain credentials`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // One answer for "resolves to a forbidden address" and "does not resolve": see the module comment.
  const notAllowed = () => new UnsafeUrlError('forbidden_address', `${label} host "${host}" is not allowed: it must resolve to public addresses only`);
  let candidates: Array<{ address: string; family: number }>;
  if (net.isIP(host)) candidates = [{ address: host, family: net.isIP(host) }];
  else {
    try {
      candidates = await (policy.resolve ?? systemResolver)(host);
    } catch {
      throw notAllowed();
    }
    if (candidates.length === 0) throw notAllowed();
  }
  if (!policy.allowPrivateNetworks) {
    // Every address must be public: a host with one private record could be steered to it.
    if (candidates.some((c) => isForbiddenAddress(c.address))) throw notAllowed();
    if (url.protocol !== 'https:') throw new UnsafeUrlError('https_required', `${label} must use https`);
  }
  const chosen = candidates[0];
  return { url, host, address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
}

/**
 * A `lookup` for node:http(s) that answers with the checked address only, so the socket goes where
 * the check said: a second DNS answer (rebinding) is never consulted.
 */
export function pinnedLookup(target: CheckedTarget): net.LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: any[]) => void) => {
    if (options && options.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  }) as unknown as net.LookupFunction;
}
