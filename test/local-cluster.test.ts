import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/service.js';
import type { Services } from '../src/compose/services.js';
import { LocalCluster } from './support/local-cluster.js';
import { SteadyLoad, summarize, type Step } from './support/load.js';
import { basicAuth, Browser, pageKind, parseForms, oidc, TEST_PASSWORD } from './support/oauth.js';

// `npm run cluster` as an operator runs it: three instances behind HAProxy on a 3-master Redis
// Cluster and one database. Everything below goes through real HTTP on the instances' own ports or
// through the balancer, never through in-process shortcuts (fixtures aside).
let lc: LocalCluster;
let s: Services;
let orgId: string;
let rs: { id: string; secret: string };
let adminKey: string;
const REDIRECT = 'https://app.example.test/callback';

async function client(input: Record<string, unknown>) {
  const { client: c, clientSecret } = await s.clients.create(CLI_ACTOR, { name: 'app', orgId, redirectUris: [], ...input } as never);
  return { id: c.client_id as string, secret: clientSecret! };
}

async function apiKey(preset = 'read_only') {
  return s.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: `k-${randomBytes(2).toString('hex')}`, preset } as never);
}

async function token(url: string, c: { id: string; secret: string }, extra: Record<string, string> = {}) {
  const res = await fetch(new URL('/token', url), {
    method: 'POST',
    headers: { authorization: basicAuth(c.id, c.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...extra }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function introspect(url: string, t: string, extra: Record<string, string> = {}) {
  const res = await fetch(new URL('/token/introspection', url), {
    method: 'POST',
    headers: { authorization: basicAuth(rs.id, rs.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: t, ...extra }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

beforeAll(async () => {
  lc = await LocalCluster.start();
  s = await lc.services();
  orgId = (await s.accounts.createOrganization(CLI_ACTOR, { name: 'Cluster org', plan: 'enterprise' })).id;
  rs = await client({ grantTypes: ['client_credentials'], introspect: true });
  adminKey = (await apiKey('full_access')).key;
}, 240_000);
afterAll(async () => {
  await s?.close();
  await lc?.stop();
}, 120_000);

describe('three instances behind HAProxy on a Redis Cluster', () => {
  it('serves through the balancer, and every instance is ready', async () => {
    const status = await lc.run('status');
    expect(status.stdout).toMatch(/instance 3 {2}ready/);
    expect((await fetch(new URL('/readyz', lc.lbUrl))).status).toBe(200);
    const discovery = (await (await fetch(new URL('/.well-known/openid-configuration', lc.lbUrl))).json()) as { issuer: string };
    expect(discovery.issuer).toBe(lc.lbUrl);
  });

  it('a token issued through one instance is active on the others (opaque, JWT, API key)', async () => {
    const app = await client({ grantTypes: ['client_credentials'], scope: 'workflows:read' });
    const { key } = await apiKey();
    const urls = lc.instanceUrls;
    for (let i = 0; i < 3; i++) {
      const opaque = await token(urls[i], app, { scope: 'workflows:read' });
      const jwt = await token(urls[i], app, { scope: 'workflows:read', resource: s.config.apiAudience });
      expect(opaque.status).toBe(200);
      expect(jwt.body.access_token.split('.')).toHaveLength(3);
      for (const j of [(i + 1) % 3, (i + 2) % 3]) {
        expect((await introspect(urls[j], opaque.body.access_token)).body).toMatchObject({ active: true, client_id: app.id, iss: lc.lbUrl });
        expect((await introspect(urls[j], jwt.body.access_token)).body).toMatchObject({ active: true, client_id: app.id, org_id: orgId });
        expect((await introspect(urls[j], key)).body).toMatchObject({ active: true, credential_type: 'api_key', org_id: orgId });
      }
    }
  });

  it('signs in on one instance, consents on another, and redeems the code on a third', async () => {
    const web = await client({ grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT], scope: 'openid offline_access workflows:read' });
    const { user } = await s.accounts.createUser(CLI_ACTOR, { email: `u${randomBytes(3).toString('hex')}@example.test`, password: TEST_PASSWORD, orgId, role: 'member' });
    const browser = new Browser();
    const verifier = oidc.randomPKCECodeVerifier();
    const start = new URL('/auth', lc.instanceUrls[0]);
    start.search = new URLSearchParams({
      client_id: web.id,
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid offline_access workflows:read',
      prompt: 'consent',
      state: 'st',
      nonce: 'nn',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    // Every step goes to the next instance: the interaction lives in Redis, the session in PostgreSQL.
    let turn = 0;
    const on = (u: string | URL) => {
      const url = new URL(u, lc.lbUrl);
      const target = new URL(lc.instanceUrls[turn++ % 3]);
      url.protocol = target.protocol;
      url.host = target.host;
      return url;
    };
    const seen: string[] = [];
    let res = await browser.get(on(start));
    let callback: URL | undefined;
    for (let step = 0; step < 20 && !callback; step++) {
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get('location')!, lc.lbUrl);
        if (next.href.startsWith(REDIRECT)) callback = next;
        else res = await browser.get(on(next));
        continue;
      }
      const html = await res.text();
      const kind = pageKind(html);
      seen.push(`${kind}@${new URL(res.url || start).port}`);
      const forms = parseForms(html);
      if (kind === 'login') {
        const f = forms.find((x) => 'password' in x.fields)!;
        res = await browser.postForm(on(f.action), { csrf: f.fields.csrf, email: user.email, password: TEST_PASSWORD });
      } else if (kind === 'consent') {
        const f = forms.find((x) => x.action.endsWith('/confirm'))!;
        res = await browser.postForm(on(f.action), { csrf: f.fields.csrf, org_id: f.fields.org_id ?? f.options.org_id?.[0] ?? orgId });
      } else {
        throw new Error(`unexpected page (${res.status}): ${html.slice(0, 300)}`);
      }
    }
    expect(seen.map((p) => p.split('@')[0])).toEqual(['login', 'consent']);
    expect(callback?.searchParams.get('code')).toBeTruthy();
    const redeemed = await fetch(on('/token'), {
      method: 'POST',
      headers: { authorization: basicAuth(web.id, web.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
    });
    expect(redeemed.status).toBe(200);
    const tokens = (await redeemed.json()) as { access_token: string; refresh_token: string };
    expect((await introspect(lc.instanceUrls[turn % 3], tokens.access_token)).body).toMatchObject({ active: true, sub: user.id, org_id: orgId });
  });

  it('a revocation on one instance is refused on every other within a second (API key, opaque token)', async () => {
    const app = await client({ grantTypes: ['client_credentials'], scope: 'workflows:read' });
    const { key, apiKey: row } = await apiKey();
    const t = (await token(lc.instanceUrls[0], app, { scope: 'workflows:read' })).body.access_token as string;
    const others = lc.instanceUrls.slice(1);
    // Warm every instance's caches, so that only an invalidation message can make them refuse.
    for (const u of others) {
      expect((await introspect(u, key)).body.active).toBe(true);
      expect((await introspect(u, t)).body.active).toBe(true);
    }
    const revokedAt = Date.now();
    const del = await fetch(new URL(`/api/v1/auth/api-keys/${row.id}`, lc.instanceUrls[0]), { method: 'DELETE', headers: { 'x-api-key': adminKey } });
    expect(del.status).toBe(200);
    const rev = await fetch(new URL('/token/revocation', lc.instanceUrls[0]), {
      method: 'POST',
      headers: { authorization: basicAuth(app.id, app.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t }).toString(),
    });
    expect(rev.status).toBe(200);
    const refusedAfter = await Promise.all(
      others.flatMap((u) =>
        [key, t].map(async (credential) => {
          for (;;) {
            if ((await introspect(u, credential)).body.active === false) return Date.now() - revokedAt;
            if (Date.now() - revokedAt > 3000) return Infinity;
            await new Promise((r) => setTimeout(r, 20));
          }
        }),
      ),
    );
    console.info(`local cluster: revocation refused on the other instances after ${refusedAfter.join(', ')} ms`);
    expect(Math.max(...refusedAfter)).toBeLessThan(1000);
  });

  it('holds exact rate limits across all three instances', async () => {
    const { key, apiKey: row } = await apiKey();
    await s.rateLimits.policies.setKeyLimits(row.id, { write: { limit: 90, window: 60 } });
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) => introspect(lc.instanceUrls[i % 3], key, { ratelimit_category: 'write' })),
    );
    expect(results.every((r) => r.status === 200 && r.body.active === true)).toBe(true);
    expect(results.filter((r) => !r.body.ratelimit.limited)).toHaveLength(90);
  });
});

describe('faults under load, through the balancer', () => {
  /** Introspection-heavy traffic with a token issued now and then, one client per worker. */
  async function startLoad() {
    const clients = await Promise.all(Array.from({ length: 6 }, () => client({ grantTypes: ['client_credentials'], scope: 'workflows:read' })));
    const { key, apiKey: row } = await apiKey();
    await s.rateLimits.policies.setKeyLimits(row.id, { read: { limit: 1_000_000, window: 60 } });
    const latest: string[] = [];
    const issuedAt: number[] = [];
    // A new token per client at most every 0.5 s: well inside the per-client token budget (300/min),
    // which the load must not spend, or 429s would be counted as failures of the restart.
    return new SteadyLoad(6, async (step: Step, w) => {
      if (!latest[w] || Date.now() - (issuedAt[w] ?? 0) >= 500) {
        issuedAt[w] = Date.now();
        await step('token', async () => {
          const r = await token(lc.lbUrl, clients[w], { scope: 'workflows:read' });
          if (r.status === 200) latest[w] = r.body.access_token;
          return { status: r.status, ok: r.status === 200 };
        });
      }
      if (latest[w]) await step('introspect token', async () => {
        const r = await introspect(lc.lbUrl, latest[w]);
        return { status: r.status, ok: r.status === 200 && r.body.active === true };
      });
      await step('introspect key', async () => {
        const r = await introspect(lc.lbUrl, key, { ratelimit_category: 'read' });
        return { status: r.status, ok: r.status === 200 && r.body.active === true };
      });
    });
  }

  it('a rolling restart of the instances, one at a time, fails no request', async () => {
    const load = await startLoad();
    await new Promise((r) => setTimeout(r, 1000));
    await lc.run('roll');
    await new Promise((r) => setTimeout(r, 1000));
    const report = await load.stop();
    console.info(summarize('local cluster: rolling restart of 3 instances', report));
    expect(report.total).toBeGreaterThan(100);
    expect(report.failed).toEqual([]);
  }, 240_000);

  it('one instance killed with SIGKILL: the failed requests are counted, and the others carry on', async () => {
    const load = await startLoad();
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = load.now();
    await lc.run('kill', '2');
    // HAProxy takes the instance out after two failed checks, one second apart.
    await new Promise((r) => setTimeout(r, 4000));
    const settled = load.now();
    await new Promise((r) => setTimeout(r, 1500));
    const report = await load.stop();
    console.info(summarize('local cluster: one of 3 instances killed (SIGKILL)', report));
    console.info(summarize('local cluster: after the balancer took it out', load.report(settled)));
    expect(load.report(0, killedAt).failed).toEqual([]);
    expect(load.report(settled).failed).toEqual([]);
    // The documented figure: requests in flight on the killed instance get no response; HAProxy
    // retries those on another instance (retry-on empty-response), so few or none fail.
    expect(report.failed.length).toBeLessThanOrEqual(6);
    await lc.run('start-instance', '2');
    expect((await introspect(lc.instanceUrls[1], adminKey)).body.active).toBe(true);
  }, 120_000);
});
