import Router from '@koa/router';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { makeChecker, request } from './support/api.js';
import { jsonApiRouters } from '../src/api/index.js';
import { collectOperations, type Operation } from '../src/api/openapi.js';
import { ENDPOINT_OPERATIONS } from '../src/api/endpoint-specs.js';
import { guard } from '../src/http/guard.js';
import { Browser, createOrg, parseForms, TEST_PASSWORD } from './support/oauth.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { launchChromium, newContext } from './support/browser.js';
import path from 'node:path';

let env: TestEnv;
let doc: any;

beforeAll(async () => {
  env = await startTestServer();
  const r = await request(env.url).get('/openapi.json').expect(200);
  doc = r.body;
});
afterAll(async () => env?.close());

/** Registered operations the document lacks (method + path), or that carry no guard (no spec). */
function missing(ops: Operation[], document: any): string[] {
  return ops.filter((op) => !op.spec || !document.paths?.[op.path]?.[op.method]).map((op) => `${op.method.toUpperCase()} ${op.path}`);
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document with security schemes, scopes per operation and the error shape', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.components.securitySchemes)).toEqual(expect.arrayContaining(['bearer', 'apiKey', 'oauth2', 'clientSecretBasic']));
    expect(doc.components.securitySchemes.oauth2.flows.clientCredentials.scopes).toHaveProperty('members:manage');
    const create = doc.paths['/api/v1/clients'].post;
    expect(create.security).toContainEqual({ oauth2: ['clients:manage'] });
    expect(create.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ClientRegistration' });
    expect(doc.components.schemas.ClientRegistration.properties).toHaveProperty('token_endpoint_auth_method');
    expect(create.responses['400']).toEqual({ $ref: '#/components/responses/Error400' });
    expect(doc.components.responses.Error400.description).toContain('VALIDATION_ERROR');
    expect(doc.components.schemas.Error.properties.error.properties).toHaveProperty('code');
    // Form bodies of the endpoints in front of the provider.
    expect(doc.paths['/token'].post.requestBody.content).toHaveProperty('application/x-www-form-urlencoded');
    expect(doc.paths['/token/introspection'].post.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/IntrospectionResponse');
    for (const p of ['/token/revocation', '/ratelimit/check', '/healthz', '/readyz', '/openapi.json']) expect(doc.paths).toHaveProperty(p);
  });

  it('describes every route the JSON API registers (and a route without a guard would be missing)', () => {
    const ops = collectOperations(jsonApiRouters(env.server.services));
    expect(ops.length).toBeGreaterThan(40);
    expect(missing(ops, doc)).toEqual([]);
    expect(missing(ENDPOINT_OPERATIONS, doc)).toEqual([]);
    // Every route under /api/v1 and the endpoints named in the document's contract are there.
    for (const p of ['/api/v1/members/{user_id}/grants/{grant_id}', '/api/v1/clients/{client_id}/rotate-secret', '/api/v1/organization', '/api/v1/auth/whoami']) {
      expect(doc.paths).toHaveProperty(p);
    }
    // The check itself can fail: an unguarded route, or one the document does not hold.
    const rogue = new Router({ prefix: '/api/v1/rogue' });
    rogue.get('/', async (ctx) => {
      ctx.body = {};
    });
    rogue.post('/:id', guard({ operationId: 'x', summary: 'x', tags: [], access: 'public', responses: {} }, async () => {}));
    expect(missing(collectOperations([rogue]), doc)).toEqual(['GET /api/v1/rogue', 'POST /api/v1/rogue/{id}']);
  });

  it('every schema in it compiles as JSON Schema 2020-12, and the checker refuses an answer that does not match', () => {
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema({ $id: 'x', components: doc.components });
    expect(() => ajv.getSchema('x')).not.toThrow();
    const checker = makeChecker(doc);
    expect(checker.check('GET', '/api/v1/teams', 200, 'application/json', { success: true, data: [], next_cursor: null })).toBeUndefined();
    expect(checker.check('GET', '/api/v1/teams', 200, 'application/json', { success: true, data: [{ id: 1 }], next_cursor: null })).toMatch(/does not match/);
    expect(checker.check('GET', '/api/v1/teams', 418, 'application/json', {})).toMatch(/not in the OpenAPI document/);
    expect(checker.check('GET', '/dashboard', 200, 'text/html', '')).toBeUndefined();
  });

  it('is rendered for people at /docs/api from this origin (no CDN), and linked from the dashboard', async () => {
    const page = await request(env.url).get('/docs/api').expect(200);
    expect(page.headers['content-type']).toMatch(/html/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const srcs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(srcs.length).toBeGreaterThanOrEqual(3);
    for (const src of srcs) {
      expect(src.startsWith('/')).toBe(true);
      await request(env.url).get(src).expect(200);
    }
    const org = await createOrg(env);
    await env.server.services.accounts.createUser(CLI_ACTOR, { email: 'docs-reader@example.test', password: TEST_PASSWORD, orgId: org, role: 'member' });
    const b = new Browser();
    const form = parseForms(await (await b.get(new URL('/dashboard', env.url))).text())[0];
    await b.postForm(new URL(form.action, env.url), { csrf: form.fields.csrf, email: 'docs-reader@example.test', password: TEST_PASSWORD });
    const keys = await b.get(new URL(`/dashboard/orgs/${org}/api-keys`, env.url));
    expect(keys.status).toBe(200);
    expect(await keys.text()).toContain('href="/docs/api"');
  });

  it('renders in a real browser under the strict CSP, with no request leaving this origin', async () => {
    const browser = await launchChromium();
    try {
      const context = await newContext(browser, env.url);
      const page = await context.newPage();
      const problems: string[] = [];
      const foreign: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(String(e)));
      page.on('response', (r) => r.status() >= 400 && problems.push(`${r.status()} ${r.url()}`));
      page.on('request', (r) => !r.url().startsWith(env.url) && !r.url().startsWith('data:') && foreign.push(r.url()));
      await page.goto('/docs/api');
      await page.locator('.opblock-tag-section').first().waitFor({ timeout: 20_000 });
      expect(await page.locator('.opblock-tag').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('OAuth clients'), expect.stringContaining('Members')]));
      // Swagger UI reports what it could not read about the document as a red box of errors or warnings.
      expect(await page.locator('.errors-wrapper').count()).toBe(0);
      expect(await page.getByText('not supported').count()).toBe(0);
      await page.screenshot({ path: path.resolve(import.meta.dirname, '../docs/screenshots/api-reference-desktop.png') });
      expect(problems).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
