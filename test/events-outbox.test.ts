import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { startReceiver } from './support/webhook-receiver.js';
import { CLI_ACTOR } from '../src/audit/service.js';
import { startServer, type RunningServer } from '../src/server.js';
import { createLogger } from '../src/http/logger.js';
import { scanApiKeyExpiry } from '../src/apikeys/expiry-scan.js';

// The transactional outbox: nothing lost across a restart, nothing doubled across instances.
// The first server never polls (1 h interval); instances started here poll every 100 ms.
let env: TestEnv;
const extra: RunningServer[] = [];
beforeAll(async () => {
  env = await startTestServer({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_INTERVAL_MS: '3600000' });
});
afterAll(async () => {
  for (const s of extra) await s.close().catch(() => {});
  await env?.close();
});

async function instance(): Promise<RunningServer> {
  const s = await startServer({ ...env.config, port: 0, webhooks: { ...env.config.webhooks, pollIntervalMs: 100 } }, createLogger('silent'));
  extra.push(s);
  return s;
}

let n = 0;
const member = (s: RunningServer, orgId: string) =>
  s.services.accounts.createUser(CLI_ACTOR, { email: `m${++n}-${Date.now()}@example.com`, password: 'correct horse battery', orgId, role: 'member' });

describe('transactional outbox', () => {
  it('writes the event in the same transaction as the change: a rolled-back change leaves no event', async () => {
    const s = env.server.services;
    const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'tx' });
    const before = await s.ds.query(`SELECT count(*)::int AS n FROM event_outbox`);
    await s.ds
      .transaction(async (m) => {
        await s.audit.record(CLI_ACTOR, { orgId: org.id, action: 'member.added', targetType: 'user', targetId: 'x' }, m);
        throw new Error('change failed');
      })
      .catch(() => {});
    expect(await s.ds.query(`SELECT count(*)::int AS n FROM event_outbox`)).toEqual(before);
    expect(await s.ds.query(`SELECT count(*)::int AS n FROM audit_events WHERE target_id = 'x'`)).toEqual([{ n: 0 }]);
  });

  it('delivers after a restart an event committed while the dispatcher had not yet run', async () => {
    const rx = await startReceiver();
    try {
      const s = env.server.services;
      const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'restart' });
      await s.webhooks.create(CLI_ACTOR, org.id, { url: rx.url });
      const { user } = await member(env.server, org.id);
      expect((await s.ds.query(`SELECT count(*)::int AS n FROM event_outbox`))[0].n).toBeGreaterThan(0);
      await env.server.close(); // "killed" before its first poll
      expect(rx.received).toHaveLength(0);

      await instance(); // comes back with a working dispatcher
      await rx.waitFor((r) => r.length >= 1);
      const b = JSON.parse(rx.received[0].body);
      expect(b).toMatchObject({ type: 'member.added', data: { id: user.id } });
      await new Promise((r) => setTimeout(r, 500));
      expect(rx.received).toHaveLength(1);
    } finally {
      await rx.close();
    }
  });

  it('with two instances running, delivers each event once per endpoint', async () => {
    const a = extra[0] ?? (await instance());
    await instance();
    const r1 = await startReceiver();
    const r2 = await startReceiver();
    try {
      const s = a.services;
      const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'two' });
      await s.webhooks.create(CLI_ACTOR, org.id, { url: r1.url, events: ['member.added'] });
      await s.webhooks.create(CLI_ACTOR, org.id, { url: r2.url, events: ['member.added'] });
      const count = 25;
      await Promise.all(Array.from({ length: count }, (_, i) => member(extra[i % 2], org.id)));
      await r1.waitFor((r) => r.length >= count, 30_000);
      await r2.waitFor((r) => r.length >= count, 30_000);
      await new Promise((r) => setTimeout(r, 1000));
      for (const rx of [r1, r2]) {
        const ids = rx.received.map((x) => x.headers['webhook-id']);
        expect(ids).toHaveLength(count);
        expect(new Set(ids).size).toBe(count);
      }
      expect(r1.received.map((x) => x.headers['webhook-id']).sort()).toEqual(r2.received.map((x) => x.headers['webhook-id']).sort());
      const rows = await s.ds.query(
        `SELECT count(*)::int AS n, max(d.attempt_count) AS max FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE e.org_id = $1`,
        [org.id],
      );
      expect(rows[0]).toEqual({ n: 2 * count, max: 1 });
    } finally {
      await r1.close();
      await r2.close();
    }
  });
});

describe('api key expiry events', () => {
  it('emits api_key.expiring 7 days and 1 day before, and api_key.expired, once each even with concurrent scans', async () => {
    const s = (extra[0] ?? (await instance())).services;
    const org = await s.accounts.createOrganization(CLI_ACTOR, { name: 'expiry' });
    const mk = async (name: string) => (await s.apiKeys.create({ actor: CLI_ACTOR }, org.id, { name, scopes: ['workflows:read'] })).apiKey.id;
    const week = await mk('week');
    const day = await mk('day');
    const gone = await mk('gone');
    const later = await mk('later');
    const set = (id: string, interval: string) => s.ds.query(`UPDATE api_keys SET expires_at = now() + $2::interval WHERE id = $1`, [id, interval]);
    await set(week, '6 days 12 hours');
    await set(day, '20 hours');
    await set(gone, '-10 minutes');
    await set(later, '30 days');

    await Promise.all([scanApiKeyExpiry(s.ds, s.audit), scanApiKeyExpiry(s.ds, s.audit), scanApiKeyExpiry(s.ds, s.audit)]);
    await scanApiKeyExpiry(s.ds, s.audit);
    const events = await s.audit.list(org.id, { limit: 200 });
    const of = (id: string) => events.filter((e) => e.targetId === id && e.action !== 'api_key.created').map((e) => [e.action, e.details.days_left ?? null]);
    expect(of(week)).toEqual([['api_key.expiring', 7]]);
    expect(of(day)).toEqual([['api_key.expiring', 1]]);
    expect(of(gone)).toEqual([['api_key.expired', null]]);
    expect(of(later)).toEqual([]);

    // A day later the week key is inside the 1-day window: one more notice, then never again.
    await s.ds.query(`UPDATE api_keys SET expires_at = now() + interval '10 hours' WHERE id = $1`, [week]);
    await scanApiKeyExpiry(s.ds, s.audit);
    await scanApiKeyExpiry(s.ds, s.audit);
    const again = await s.audit.list(org.id, { limit: 200 });
    expect(again.filter((e) => e.targetId === week && e.action === 'api_key.expiring').map((e) => e.details.days_left).sort()).toEqual([1, 7]);
  });
});
