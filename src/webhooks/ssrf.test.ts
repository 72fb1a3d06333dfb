import { describe, expect, it } from 'vitest';
import { checkWebhookUrl, embeddedIPv4, isForbiddenAddress, UnsafeUrlError } from './ssrf.js';

const strict = { allowPrivateNetworks: false };
const refused = async (url: string, opts: Parameters<typeof checkWebhookUrl>[1] = strict) => {
  const err = await checkWebhookUrl(url, opts).then(() => undefined, (e) => e);
  expect(err, url).toBeInstanceOf(UnsafeUrlError);
  return err as UnsafeUrlError;
};

describe('SSRF guard', () => {
  it.each([
    '127.0.0.1', '127.8.9.10', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '::1', '::', 'fd00::1', 'fc00::1', 'fe80::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', '::127.0.0.1',
  ])('refuses %s', (a) => expect(isForbiddenAddress(a)).toBe(true));

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (a) => expect(isForbiddenAddress(a)).toBe(false));

  it('reads IPv4 inside IPv6 forms', () => {
    expect(embeddedIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('0:0:0:0:0:ffff:a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIPv4('2001:db8::1')).toBeUndefined();
  });

  it('refuses the metadata address, private ranges and loopback names with a clear reason', async () => {
    expect((await refused('http://169.254.169.254/latest/meta-data/')).message).toMatch(/169\.254\.169\.254.*public address/);
    expect((await refused('http://10.0.0.1/')).reason).toBe('forbidden_address');
    expect((await refused('https://[::ffff:127.0.0.1]/')).reason).toBe('forbidden_address');
    const local = await refused('https://localhost:8443/hook');
    expect(local.reason).toBe('forbidden_address');
    expect(local.message).toMatch(/localhost.*resolves to (127\.0\.0\.1|::1)/);
  });

  it('refuses a name when any of its addresses is private (one bad record is enough)', async () => {
    const resolve = async () => [{ address: '93.184.216.34', family: 4 }, { address: '10.1.2.3', family: 4 }];
    expect((await refused('https://mixed.example/', { allowPrivateNetworks: false, resolve })).reason).toBe('forbidden_address');
  });

  it('refuses other schemes, credentials in the URL and plain http', async () => {
    expect((await refused('file:///etc/passwd')).message).toBe('url scheme "file" is not allowed; use https');
    expect((await refused('ftp://example.com/x')).reason).toBe('scheme');
    expect((await refused('gopher://example.com/')).reason).toBe('scheme');
    expect((await refused('not a url')).reason).toBe('invalid_url');
    expect((await refused('https://user:pw@example.com/')).reason).toBe('credentials');
    const resolve = async () => [{ address: '93.184.216.34', family: 4 }];
    expect((await refused('http://example.com/', { allowPrivateNetworks: false, resolve })).reason).toBe('https_required');
    const ok = await checkWebhookUrl('https://example.com/hook', { allowPrivateNetworks: false, resolve });
    expect(ok.address).toBe('93.184.216.34');
  });

  it('WEBHOOK_ALLOW_PRIVATE_NETWORKS lifts the address and https rules, never the scheme rule', async () => {
    const ok = await checkWebhookUrl('http://127.0.0.1:9999/hook', { allowPrivateNetworks: true });
    expect(ok.address).toBe('127.0.0.1');
    expect((await refused('file:///etc/passwd', { allowPrivateNetworks: true })).reason).toBe('scheme');
  });
});
