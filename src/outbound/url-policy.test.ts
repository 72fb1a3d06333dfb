import { describe, expect, it } from 'vitest';
import { checkOutboundUrl, embeddedIPv4, isForbiddenAddress, UnsafeUrlError, type OutboundPolicy } from './url-policy.js';

const strict: OutboundPolicy = { allowPrivateNetworks: false };
const refused = async (url: string, policy: OutboundPolicy = strict, label?: string) => {
  const err = await checkOutboundUrl(url, policy, label).then(() => undefined, (e) => e);
  expect(err, url).toBeInstanceOf(UnsafeUrlError);
  return err as UnsafeUrlError;
};

describe('outbound URL policy', () => {
  it.each([
    '127.0.0.1', '127.8.9.10', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '::1', '::', 'fd00::1', 'fc00::1', 'fe80::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', '::127.0.0.1',
    // RFC 8215 local-use NAT64: the whole prefix leads into the operator's own IPv4 network.
    '64:ff9b:1::7f00:1', '64:ff9b:1:7f00:0:100::', '64:ff9b:1::a00:1', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff',
    // SIIT IPv4-translated addresses (RFC 6145): ::ffff:0:a.b.c.d.
    '::ffff:0:7f00:1', '::ffff:0:127.0.0.1', '0:0:0:0:ffff:0:a9fe:a9fe', '::ffff:0:a00:1',
  ])('refuses %s', (a) => expect(isForbiddenAddress(a)).toBe(true));

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8', '::ffff:0:808:808', '64:ff9b::808:808'])('allows %s', (a) =>
    expect(isForbiddenAddress(a)).toBe(false),
  );

  it('reads IPv4 inside IPv6 forms', () => {
    expect(embeddedIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('::ffff:0:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('0:0:0:0:0:ffff:a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIPv4('2001:db8::1')).toBeUndefined();
  });

  it('refuses the metadata address, private ranges and loopback names without saying where a name points', async () => {
    expect((await refused('http://169.254.169.254/latest/meta-data/')).reason).toBe('forbidden_address');
    expect((await refused('http://10.0.0.1/')).reason).toBe('forbidden_address');
    expect((await refused('https://[::ffff:127.0.0.1]/')).reason).toBe('forbidden_address');
    expect((await refused('https://[64:ff9b:1::7f00:1]/')).reason).toBe('forbidden_address');
    expect((await refused('https://[::ffff:0:7f00:1]/')).reason).toBe('forbidden_address');
    const local = await refused('https://localhost:8443/hook');
    expect(local.reason).toBe('forbidden_address');
    expect(local.message).toBe('url host "localhost" is not allowed: it must resolve to public addresses only');
    expect(local.message).not.toMatch(/127\.0\.0\.1|::1/);
  });

  it('answers the same for a name that resolves to a private address and one that does not resolve', async () => {
    const internal = await refused('https://db.internal/', { allowPrivateNetworks: false, resolve: async () => [{ address: '10.9.8.7', family: 4 }] });
    const nowhere = await refused('https://db.internal/', {
      allowPrivateNetworks: false,
      resolve: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      },
    });
    expect(internal.message).toBe(nowhere.message);
    expect(internal.reason).toBe(nowhere.reason);
    expect(internal.message).not.toContain('10.9.8.7');
  });

  it('refuses a name when any of its addresses is private (one bad record is enough)', async () => {
    const resolve = async () => [{ address: '93.184.216.34', family: 4 }, { address: '10.1.2.3', family: 4 }];
    expect((await refused('https://mixed.example/', { allowPrivateNetworks: false, resolve })).reason).toBe('forbidden_address');
  });

  it('refuses other schemes, credentials in the URL and plain http, naming the field', async () => {
    expect((await refused('file:///etc/passwd')).message).toBe('url scheme "file" is not allowed; use https');
    expect((await refused('file:///etc/passwd', strict, 'jwks_uri')).message).toBe('jwks_uri scheme "file" is not allowed; use https');
    expect((await refused('ftp://example.com/x')).reason).toBe('scheme');
    expect((await refused('gopher://example.com/')).reason).toBe('scheme');
    expect((await refused('not a url')).reason).toBe('invalid_url');
    expect((await refused('https://user:pw@example.com/')).reason).toBe('credentials');
    const resolve = async () => [{ address: '93.184.216.34', family: 4 }];
    expect((await refused('http://example.com/', { allowPrivateNetworks: false, resolve })).reason).toBe('https_required');
    const ok = await checkOutboundUrl('https://example.com/hook', { allowPrivateNetworks: false, resolve });
    expect(ok.address).toBe('93.184.216.34');
  });

  it('the development override lifts the address and https rules, never the scheme rule', async () => {
    const ok = await checkOutboundUrl('http://127.0.0.1:9999/hook', { allowPrivateNetworks: true });
    expect(ok.address).toBe('127.0.0.1');
    expect((await refused('file:///etc/passwd', { allowPrivateNetworks: true })).reason).toBe('scheme');
  });
});
