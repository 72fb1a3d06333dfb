import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../config/load.js';
import { createLogger } from '../http/logger.js';
import { buildServices } from '../compose/services.js';
import { AppError } from '../http/errors.js';
import { openDatabase } from '../storage/datasource.js';
import { DatabaseInUseError } from '../storage/data-lock.js';
import { AuditLog, CLI_ACTOR } from '../audit/service.js';
import type { Config } from '../config/schema.js';
import { entities, migrations } from '../compose/entities.js';
import { COMMANDS, KEY_COMMANDS, OPTIONS, UsageError } from './commands.js';
import { API_KEY_USAGE } from './api-keys.js';
import { RATE_LIMIT_USAGE } from './rate-limits.js';
import { FLAG_OF, MANAGEMENT_USAGE } from './management.js';

const USAGE = `usage: flowgate <command> [options] [--json]
  migrate
  orgs create --name N [--plan free|pro|enterprise]     orgs list
  teams create --org ID --name N
  users create --email E --password P --org ID [--role owner|admin|member] [--team ID]
  users verify-email --email E        (only after checking the address owner controls it)
  clients create --org ID --name N [--redirect-uri U]... [--grant-type G]... [--auth-method M]
                 [--jwks-file F | --jwks-uri U] [--scope "S"] [--introspect]
  clients create --platform --name N --introspect [--grant-type client_credentials] ...
                 (a resource server of the platform's services: introspects every organization)
  clients list --org ID
${MANAGEMENT_USAGE}
  keys generate | keys rotate | keys list
  webhooks create --org ID --url U [--event E]... [--description D]     webhooks list --org ID
${API_KEY_USAGE}
${RATE_LIMIT_USAGE}`;

/**
 * Key files need no database, but a rotation is an event every organization may subscribe to
 * (signing_key.rotated): the database is opened first, so a rotation never happens without its event
 * (on the embedded database held by a running server, nothing is rotated and the CLI exits 2).
 */
async function rotateWithEvent(config: Config, run: () => Promise<void | Record<string, unknown>>): Promise<void> {
  const ds = await openDatabase(config, { entities, migrations });
  try {
    const rotated = await run();
    if (rotated) await new AuditLog(ds).record(CLI_ACTOR, { orgId: null, action: 'signing_key.rotated', targetType: 'signing_key', details: rotated });
  } finally {
    await ds.destroy();
  }
}

/** A service error in the CLI's words: fields at fault named by their flags. */
function cliMessage(err: AppError): string {
  const issues = (err.details as { issues?: { path: string; message: string }[] } | undefined)?.issues;
  if (!issues?.length) return err.message;
  return issues
    .map((i) => {
      const field = i.path.split('.')[0];
      const flag = FLAG_OF[field];
      return flag ? `${flag}: ${i.message.replace(new RegExp(`^${field}: `), '')}` : i.path ? `${i.path}: ${i.message}` : i.message;
    })
    .join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const fail = (code: string, message: string, status = 1) => {
    if (json) process.stdout.write(`${JSON.stringify({ success: false, error: { code, message } })}\n`);
    else process.stderr.write(`error: ${message}\n`);
    return status;
  };
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    const name = positionals.slice(0, 2).join(' ');
    const config = loadConfig();
    if (positionals[0] === 'migrate') {
      const ds = await openDatabase(config, { entities, migrations });
      await ds.destroy();
      process.stdout.write(json ? '{"migrated":true}\n' : 'migrations applied\n');
      return 0;
    }
    const maxTokenLifetime = Math.max(config.tokens.accessTokenTtl, config.tokens.idTokenTtl, config.tokens.clientCredentialsTtl);
    if (KEY_COMMANDS[name]) {
      const run = () => KEY_COMMANDS[name](config.keysDir, maxTokenLifetime, { values, json });
      if (name === 'keys rotate') await rotateWithEvent(config, run);
      else await run();
      return 0;
    }
    const command = COMMANDS[name];
    if (!command) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    const services = await buildServices(config, createLogger('warn'));
    try {
      await command(services, { values, json });
    } finally {
      await services.close();
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) return fail('USAGE', `${err.message}\n${USAGE}`, 2);
    // Nothing was written: another process owns the embedded database.
    if (err instanceof DatabaseInUseError) return fail('DATABASE_IN_USE', err.message, 2);
    if (err instanceof ConfigError) return fail('CONFIG', err.message, 2);
    if (err instanceof AppError) return fail(err.code, cliMessage(err));
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return fail('USAGE', (err as Error).message, 2);
    throw err;
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('src/cli/main.ts');
if (isMain) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`error: ${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
