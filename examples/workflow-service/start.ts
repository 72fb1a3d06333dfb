// `npm run example`: the example workflow service, beside a running Flowgate.
//
// Attaches to the Flowgate at FLOWGATE_URL (default http://localhost:3000, what `npm start` serves)
// as a resource server, with RS_CLIENT_ID / RS_CLIENT_SECRET, or else CLIENT_ID / CLIENT_SECRET (the
// demo client the first start printed, which may introspect). When nothing answers there, it starts
// a Flowgate of its own instead, on FLOWGATE_PORT (default 3001) with its own data (./data/example).
// Serves on EXAMPLE_PORT (default 4000). Stops cleanly on SIGTERM or SIGINT.
import http from 'node:http';
import path from 'node:path';
import { buildWorkflowService } from './app.js';

const port = Number(process.env.EXAMPLE_PORT ?? 4000);
const attachTo = (process.env.FLOWGATE_URL ?? 'http://localhost:3000').replace(/\/$/, '');
const say = (lines: string[]) => process.stdout.write(lines.join('\n') + '\n');

interface Attached {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Only when this process started its own Flowgate. */
  close?: () => Promise<void>;
  notes: string[];
}

async function reachable(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

/** The issuer Flowgate announces (ISSUER may differ from the URL used to reach it). */
async function issuerOf(url: string): Promise<string> {
  const doc = (await (await fetch(`${url}/.well-known/openid-configuration`)).json()) as { issuer: string };
  return doc.issuer;
}

/** The credentials must be allowed to introspect, or every request would be a 500: say so now. */
async function checkCredentials(issuer: string, clientId: string, clientSecret: string): Promise<string | undefined> {
  const res = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'token=probe',
  });
  if (res.ok) return undefined;
  const body = (await res.json().catch(() => ({}))) as { error_description?: string };
  return body.error_description ?? `HTTP ${res.status}`;
}

async function attach(): Promise<Attached | undefined> {
  if (!(await reachable(attachTo))) return undefined;
  const clientId = process.env.RS_CLIENT_ID ?? process.env.CLIENT_ID;
  const clientSecret = process.env.RS_CLIENT_SECRET ?? process.env.CLIENT_SECRET;
  if (!clientId || !clientSecret) {
    say([
      `Flowgate answers at ${attachTo}, but this service needs a client that may introspect.`,
      'Export the demo client the first `npm start` printed, then run `npm run example` again:',
      '  export CLIENT_ID=... CLIENT_SECRET=...',
      '(or RS_CLIENT_ID / RS_CLIENT_SECRET of a client registered with the introspection permission).',
    ]);
    process.exit(1);
  }
  const issuer = await issuerOf(attachTo);
  const problem = await checkCredentials(attachTo, clientId, clientSecret);
  if (problem) {
    say([`Flowgate at ${attachTo} refused the client ${clientId} (${problem}).`, 'It must exist, use client_secret_basic, and have the introspection permission.']);
    process.exit(1);
  }
  return { issuer, clientId, clientSecret, notes: [`  Flowgate:          ${attachTo} (attached; issuer ${issuer})`] };
}

/** Nothing is running: a Flowgate of our own, with its own port and data, seeded on first start. */
async function ownFlowgate(): Promise<Attached> {
  const [{ loadConfig }, { createLogger }, { startServer }, { seedDevelopmentData }, { SYSTEM_ACTOR }, { DatabaseInUseError }] = await Promise.all([
    import('../../src/config/load.js'),
    import('../../src/http/logger.js'),
    import('../../src/server.js'),
    import('../../src/dev-seed.js'),
    import('../../src/audit/service.js'),
    import('../../src/storage/data-lock.js'),
  ]);
  const flowgatePort = process.env.FLOWGATE_PORT ?? '3001';
  const config = loadConfig({
    ...process.env,
    PORT: flowgatePort,
    ISSUER: process.env.ISSUER ?? `http://localhost:${flowgatePort}`,
    DATA_DIR: process.env.DATA_DIR ?? path.join('data', 'example'),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const flowgate = await startServer(config, createLogger(config.logLevel)).catch((err) => {
    if (err instanceof DatabaseInUseError) {
      process.stderr.write(`The example cannot start a Flowgate of its own: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  });
  const seed = config.seedDevData ? await seedDevelopmentData(flowgate.services) : undefined;
  const orgs = await flowgate.services.accounts.listOrganizations();
  if (!orgs.length) throw new Error('no organization: create one with `npm run cli -- orgs create --name ...`');
  // Its secret is stored hashed, so a later start rotates it rather than registering again.
  const RS_NAME = 'Example workflow service';
  const existing = (await flowgate.services.clients.list(orgs[0].id)).find((c) => c.client_name === RS_NAME && c.introspection);
  const rs = existing
    ? await flowgate.services.clients.rotateSecret(SYSTEM_ACTOR, orgs[0].id, existing.client_id)
    : await flowgate.services.clients.create(SYSTEM_ACTOR, {
        orgId: orgs[0].id,
        name: RS_NAME,
        grantTypes: ['client_credentials'],
        authMethod: 'client_secret_basic',
        introspect: true,
      });
  const { key } = await flowgate.services.apiKeys.create({ actor: SYSTEM_ACTOR }, orgs[0].id, { name: 'Example walkthrough', preset: 'read_write' });
  return {
    issuer: config.issuer,
    clientId: rs.client.client_id,
    clientSecret: rs.clientSecret!,
    close: () => flowgate.close(),
    notes: [
      `  Flowgate:          ${config.issuer} (started here: nothing answered at ${attachTo}; data in ${config.dataDir})`,
      ...(seed ? [`  Sign in:           ${seed.email} / ${seed.password}`] : []),
      `  An API key:        export API_KEY=${key}`,
    ],
  };
}

const flowgate = (await attach()) ?? (await ownFlowgate());
const { app } = buildWorkflowService({ issuer: flowgate.issuer, clientId: flowgate.clientId, clientSecret: flowgate.clientSecret, rateLimit: true });
const server = http.createServer(app.callback());
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => resolve());
});
const base = `http://localhost:${port}`;
say([
  '',
  ...flowgate.notes,
  `  Workflow service:  ${base} (resource server client ${flowgate.clientId})`,
  '',
  '  Next, with an API key in $API_KEY (README, "Try it"):',
  `    curl -s -X POST ${base}/api/v1/workflows -H "x-api-key: $API_KEY" -H "Content-Type: application/json" -d '{"name": "Invoices"}'`,
  `    curl -s -X POST ${base}/developer/api/workflows/$WORKFLOW_ID/trigger/sync -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/json" -d '{"human_msg": "hello"}'`,
  `    curl -s ${base}/developer/api/workflow_instances/$RUN_ID/status -H "Authorization: Bearer $API_KEY"`,
  '  Stop with Ctrl-C.',
  '',
]);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 5000).unref();
  });
  await flowgate.close?.();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
