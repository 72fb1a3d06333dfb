import { describe, expect, it } from 'vitest';
import { redactUrl } from './redact-url.js';

describe('redactUrl', () => {
  it.each([
    ['/api/v1/x?api-key=SECRET', '/api/v1/x?api-key=[redacted]'],
    ['/api/v1/x?api%2Dkey=SECRET', '/api/v1/x?api%2Dkey=[redacted]'],
    ['/api/v1/x?api-k%65y=SECRET&limit=5', '/api/v1/x?api-k%65y=[redacted]&limit=5'],
    ['/api/v1/x?API_KEY=SECRET', '/api/v1/x?API_KEY=[redacted]'],
    ['/api/v1/x?apiKey=SECRET', '/api/v1/x?apiKey=[redacted]'],
    ['/api/v1/x?a=1&api+key=SECRET', '/api/v1/x?a=1&api+key=[redacted]'],
    ['/me?access_t%6Fken=SECRET', '/me?access_t%6Fken=[redacted]'],
    ['/cb?code=SECRET&state=SECRET2', '/cb?code=[redacted]&state=[redacted]'],
    ['/auth?client_id=c&request_uri=urn:x:SECRET', '/auth?client_id=c&request_uri=[redacted]'],
    ['/x?token', '/x?token=[redacted]'],
    ['/x?ok=1#frag', '/x?ok=1#[redacted]'],
  ])('%s', (input, expected) => expect(redactUrl(input)).toBe(expected));

  it('redacts the invitation token in the path, however the path is spelled', () => {
    expect(redactUrl('/dashboard/invitations/SECRET')).toBe('/dashboard/invitations/[redacted]');
    expect(redactUrl('/dashboard/invitations/SECRET/')).toBe('/dashboard/invitations/[redacted]/');
    expect(redactUrl('/Dashboard/%69nvitations/SECRET?x=1')).toBe('/Dashboard/%69nvitations/[redacted]?x=1');
    expect(redactUrl('/dashboard//invitations/SECRET')).toBe('/dashboard//invitations/[redacted]');
  });

  it('redacts inside a URL carried as the sign-in page’s next parameter', () => {
    const out = redactUrl(`/dashboard/login?next=${encodeURIComponent('/dashboard/invitations/SECRET?api-key=K')}`);
    expect(out).not.toContain('SECRET');
    expect(out).not.toMatch(/=K\b/);
  });

  it('leaves ordinary URLs alone', () => {
    expect(redactUrl('/api/v1/audit-events?limit=5&action=api_key.created')).toBe('/api/v1/audit-events?limit=5&action=api_key.created');
    expect(redactUrl('/dashboard/orgs/1/api-keys')).toBe('/dashboard/orgs/1/api-keys');
  });
});
