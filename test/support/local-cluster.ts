/**
 * deploy/local-cluster/cluster.sh driven by a test: three Flowgate instances behind HAProxy, a
 * 3-master Redis Cluster and a database of its own, on free ports and in a temporary state
 * directory, started and stopped with the same commands an operator uses.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/http/logger.js';
import { buildServices, type Services } from '../../src/compose/services.js';
import { freePort, projectRoot } from './process.js';
import { PG_ADMIN_URL } from './server.js';

const run = promisify(execFile);
const SCRIPT = path.join(projectRoot, 'deploy/local-cluster/cluster.sh');

export class LocalCluster {
  private constructor(
    readonly env: Record<string, string>,
    readonly lbUrl: string,
    readonly instanceUrls: string[],
  ) {}

  static async start(): Promise<LocalCluster> {
    const ports = async (n: number) => Promise.all(Array.from({ length: n }, () => freePort()));
    const [lb] = await ports(1);
    const instances = await ports(3);
    const redis = await ports(3);
    const bus = await ports(3);
    const metrics = await ports(3);
    const env = {
      STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'flowgate-local-cluster-')),
      LB_PORT: String(lb),
      INSTANCE_PORTS: instances.join(','),
      REDIS_PORTS: redis.join(','),
      REDIS_BUS_PORTS: bus.join(','),
      METRICS_PORTS: metrics.join(','),
      DB_NAME: `flowgate_test_lc_${randomBytes(4).toString('hex')}`,
      DATABASE_ADMIN_URL: PG_ADMIN_URL,
    };
    const c = new LocalCluster(env, `http://127.0.0.1:${lb}`, instances.map((p) => `http://127.0.0.1:${p}`));
    await c.run('start');
    return c;
  }

  /** Runs a cluster.sh command; rejects with its output when it fails. */
  async run(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    try {
      return await run('bash', [SCRIPT, ...args], { env: { ...process.env, ...this.env }, cwd: projectRoot, timeout: 180_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`cluster.sh ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    }
  }

  /** The instances' configuration (same database, Redis Cluster, secrets and keys), for fixtures. */
  config(): Config {
    const secrets = Object.fromEntries(
      readFileSync(path.join(this.env.STATE_DIR, 'secrets.env'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    return loadConfig({
      ...secrets,
      NODE_ENV: 'production',
      PORT: '0',
      ISSUER: this.lbUrl,
      DATABASE_URL: `${PG_ADMIN_URL.replace(/\/[^/]*$/, '')}/${this.env.DB_NAME}`,
      REDIS_CLUSTER_NODES: this.env.REDIS_PORTS.split(',').map((p) => `127.0.0.1:${p}`).join(','),
      REDIS_PREFIX: 'flowgate:',
      KEYS_DIR: path.join(this.env.STATE_DIR, 'keys'),
      DATA_DIR: path.join(this.env.STATE_DIR, 'data'),
      LOG_LEVEL: 'silent',
      SEED_DEV_DATA: 'false',
    });
  }

  /** The service layer on the cluster's stores, as the CLI builds it: for creating fixtures. */
  async services(): Promise<Services> {
    const config = this.config();
    return buildServices(config, createLogger('silent'));
  }

  log(n: number): string {
    return readFileSync(path.join(this.env.STATE_DIR, `instance-${n}.log`), 'utf8');
  }

  async stop(): Promise<void> {
    await this.run('stop', '--purge');
  }
}
