import { runCli } from '../../src/cli/main.js';
import type { TestEnv } from './server.js';

/** Runs the real CLI in-process against a test server's stores; returns the one JSON object it printed. */
export async function runCliJson(env: TestEnv, ...args: string[]): Promise<{ code: number; out: any }> {
  const saved = { ...process.env };
  Object.assign(process.env, {
    NODE_ENV: 'test',
    DATABASE_URL: env.config.databaseUrl,
    REDIS_URL: env.config.redisUrl,
    REDIS_PREFIX: env.config.redisPrefix,
    API_KEY_PEPPER: env.config.apiKeys.pepper,
    API_KEY_PREFIX: env.config.apiKeys.prefix,
    COOKIE_SECRETS: env.config.cookieSecrets.join(','),
    KEYS_DIR: env.config.keysDir,
    DATA_DIR: env.config.dataDir,
    ISSUER: env.config.issuer,
    SEED_DEV_DATA: 'false',
  });
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((c: string | Uint8Array) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
  try {
    const code = await runCli([...args, '--json']);
    const text = chunks.join('').trim();
    return { code, out: text ? JSON.parse(text) : undefined };
  } finally {
    process.stdout.write = write;
    process.env = saved;
  }
}
