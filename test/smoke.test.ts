import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/api.js';
import { startTestServer, type TestEnv } from './support/server.js';

let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

describe('server', () => {
  it('serves discovery and readyz on PostgreSQL and Redis', async () => {
    const d = await request(env.url).get('/.well-known/openid-configuration').expect(200);
    expect(d.body.issuer).toBe(env.url);
    const r = await request(env.url).get('/readyz').expect(200);
    expect(r.body.checks).toEqual({ database: 'up', redis: 'up' });
  });
});
