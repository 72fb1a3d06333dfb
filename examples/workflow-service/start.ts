// `npm run example`: Flowgate and the example workflow service together, on Flowgate's default
// configuration (embedded PostgreSQL and in-process store unless DATABASE_URL / REDIS_URL are set).
import http from 'node:http';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/http/logger.js';
import { startServer } from '../../src/server.js';
import { seedDevelopmentData } from '../../src/dev-seed.js';
import { SYSTEM_ACTOR } from '../../src/audit/service.js';
import { buildWorkflowService } from './app.js';
import { DatabaseInUseError } from '../../src/storage/data-lock.js';

const config = loadConfig();
const logger = createLogger(config.logLevel);
const flowgate = await startServer(config, logger).catch((err) => {
  if (err instanceof DatabaseInUseError) {
    process.stderr.write(`The example cannot start: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
});
const seed = config.seedDevData ? await seedDevelopmentData(flowgate.services) : undefined;
const orgs = await flowgate.services.accounts.listOrganizations();
if (!orgs.length) throw new Error('no organization: create one with `npm run cli -- orgs create --name ...`');

// The example service authenticates to Flowgate as a resource server with the introspection
// permission. Its secret is stored hashed, so a later start rotates it rather than registering again.
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
const port = Number(process.env.EXAMPLE_PORT ?? 4000);
const { app } = buildWorkflowService({ issuer: config.issuer, clientId: rs.client.client_id, clientSecret: rs.clientSecret!, rateLimit: true });
http.createServer(app.callback()).listen(port, '127.0.0.1', () => {
  process.stdout.write(
    [
      '',
      `  Flowgate:          ${config.issuer}`,
      `  Workflow service:  http://127.0.0.1:${port} (resource server client ${rs.client.client_id})`,
      ...(seed ? [`  Sign in:           ${seed.email} / ${seed.password}`] : []),
      '  Create an API key, then:',
      `    curl -H "x-api-key: $KEY" http://127.0.0.1:${port}/api/v1/workflows`,
      '',
    ].join('\n') + '\n',
  );
});
