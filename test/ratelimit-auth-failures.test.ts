import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { startTestServer, type TestEnv } from './support/server.js';
import { createOrg } from './support/oauth.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { generateApiKey } from '../src/credentials/api-key-format.js';

let env: TestEnv;

beforeAll(async () => {
  env = await startTestServer({ RATE_LIMITS: JSON.stringify({ authFailures: { limit: 5, window: '1m' } }) });
});
afterAll(async () => env?.close());

describe('guessing credentials at Flowgate\'s API', () => {
  it('refused credentials from one address are throttled (429 with Retry-After), valid ones never count', async () => {
    const orgId = await createOrg(env);
    const { key } = await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'k', scopes: ['api_keys:read'] });
    // A busy, correctly configured caller is never throttled by this.
    for (let i = 0; i < 20; i++) expect((await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', key)).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', generateApiKey('sk-'))).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    // Once an address is throttled, no credential is even read: a right guess cannot be told from a wrong one.
    const blocked = await request(env.url).get('/api/v1/auth/whoami').set('x-api-key', key);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.body.error.code).toBe('RATE_LIMITED');
  });
});
