/**
 * Private Redis deployments for tests that need more than the shared Redis on 6379 (which is never
 * killed, paused or reconfigured): a standalone server, a 3-master Cluster, and Sentinel (one master,
 * one replica, one sentinel), each on free ports in its own temporary directory, optionally with TLS
 * and ACL users. Everything started here is killed when the test process exits.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './process.js';

const run = promisify(execFile);
const children = new Set<ChildProcess>();
const killChildren = () => {
  for (const c of children) c.kill('SIGKILL');
};
process.once('exit', killChildren);
// A test worker ended by a signal runs no 'exit' handlers: the servers would outlive it.
for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  process.once(signal, () => {
    killChildren();
    process.exit(code);
  });
}

/** The ACL of the Flowgate user, exactly as docs/operations.md gives it (prefix `fgtest:`). */
export function flowgateAclRules(prefix: string): string {
  return [
    'on',
    'resetchannels',
    `~${prefix}*`,
    `&${prefix}*`,
    '-@all',
    // Connection set-up (AUTH, HELLO, ready check, client name/info) and liveness.
    '+auth', '+hello', '+ping', '+info', '+client|setname', '+client|getname',
    // Cluster topology discovery (ioredis' Cluster client).
    '+cluster|slots', '+cluster|shards', '+cluster|nodes', '+cluster|info',
    // The key-value store.
    '+get', '+mget', '+set', '+getdel', '+del', '+sadd', '+smembers', '+expire', '+incrby', '+multi', '+exec', '+discard',
    '+publish', '+subscribe', '+unsubscribe',
    // The rate limiter's script, and what it calls.
    '+evalsha', '+eval', '+script|load', '+zremrangebyscore', '+zcard', '+zadd', '+zrange', '+pexpire', '+time', '+hmget', '+hincrby', '+hdel',
  ].join(' ');
}

export interface TlsMaterial {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 / localhost (openssl). */
export function makeTls(): TlsMaterial {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-redis-tls-'));
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=flowgate-test-ca', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.crt'));
  return { dir, ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

export interface SecurityOptions {
  tls?: TlsMaterial;
  /** ACL: `default` off, an `admin` user for the harness, and the `flowgate` user with the documented rules. */
  acl?: { prefix: string; password: string };
}

export const ADMIN = { user: 'admin', password: 'admin-password-for-tests' };

function securityArgs(o: SecurityOptions, port: number): string[] {
  const args: string[] = [];
  if (o.tls) {
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', o.tls.cert, '--tls-key-file', o.tls.key, '--tls-ca-cert-file', o.tls.ca, '--tls-auth-clients', 'no', '--tls-replication', 'yes');
  } else {
    args.push('--port', String(port));
  }
  if (o.acl) {
    // Each directive's words as separate arguments: redis-server quotes an argument with spaces as one word.
    for (const user of ['default off', `${ADMIN.user} on >${ADMIN.password} ~* &* +@all`, `flowgate >${o.acl.password} ${flowgateAclRules(o.acl.prefix)}`]) {
      args.push('--user', ...user.split(' '));
    }
    // Replicas authenticate to their master as the admin user.
    args.push('--masteruser', ADMIN.user, '--masterauth', ADMIN.password);
  }
  return args;
}

/** redis-cli flags for the harness (admin user, TLS). */
function cliArgs(o: SecurityOptions): string[] {
  return [
    ...(o.tls ? ['--tls', '--cacert', o.tls.ca] : []),
    ...(o.acl ? ['--user', ADMIN.user, '--pass', ADMIN.password, '--no-auth-warning'] : []),
  ];
}

/** An ioredis connection for the harness itself (admin user), to one node. */
export function adminConnection(port: number, o: SecurityOptions): Redis {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    ...(o.acl && { username: ADMIN.user, password: ADMIN.password }),
    ...(o.tls && { tls: { ca: readFileSync(o.tls.ca, 'utf8') } }),
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  return r;
}

/** One redis-server (or redis-sentinel) process in its own directory. */
export class RedisProcess {
  private proc: ChildProcess | undefined;
  readonly dir: string;

  constructor(
    readonly port: number,
    private readonly args: string[],
    private readonly binary: 'redis-server' | 'redis-sentinel' = 'redis-server',
    /** For sentinels: the configuration file written before start (Sentinel rewrites it). */
    private readonly configText?: string,
  ) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), `fg-${binary}-`));
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    const args = [...this.args];
    if (this.configText !== undefined) {
      const file = path.join(this.dir, 'sentinel.conf');
      writeFileSync(file, this.configText);
      args.unshift(file);
    }
    const persistence = this.binary === 'redis-server' ? ['--save', '', '--appendonly', 'no'] : [];
    const p = spawn(this.binary, [...args, '--dir', this.dir, '--daemonize', 'no', ...persistence], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = p;
    children.add(p);
    p.once('exit', () => children.delete(p));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.binary} on ${this.port} did not start:\n${out}`)), 15_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (/Ready to accept connections|Sentinel ID is/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      p.stdout!.on('data', onData);
      p.stderr!.on('data', onData);
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.binary} on ${this.port} exited ${code}:\n${out}`));
      });
    });
  }

  /** SIGKILL: a crash, not a shutdown. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function until(what: string, cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await cond()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}

// ---------------------------------------------------------------------------------------------

/** A standalone redis-server of its own. */
export class StandaloneRedis {
  private constructor(
    readonly server: RedisProcess,
    readonly security: SecurityOptions,
  ) {}

  static async start(security: SecurityOptions = {}): Promise<StandaloneRedis> {
    const port = await freePort();
    const server = new RedisProcess(port, ['--bind', '127.0.0.1', ...securityArgs(security, port)]);
    await server.start();
    return new StandaloneRedis(server, security);
  }

  get port() {
    return this.server.port;
  }

  /** REDIS_URL for the Flowgate user (or without credentials when there is no ACL). */
  url(): string {
    const scheme = this.security.tls ? 'rediss' : 'redis';
    const auth = this.security.acl ? `flowgate:${encodeURIComponent(this.security.acl.password)}@` : '';
    return `${scheme}://${auth}127.0.0.1:${this.port}`;
  }

  env(): Record<string, string> {
    return { REDIS_URL: this.url(), ...(this.security.tls && { REDIS_TLS_CA_FILE: this.security.tls.ca }) };
  }

  admin(): Redis {
    return adminConnection(this.port, this.security);
  }

  async stop(): Promise<void> {
    await this.server.remove();
  }
}

/** A Redis Cluster of `masters` masters and no replicas (or `replicas` per master). */
export class RedisClusterFixture {
  private constructor(
    readonly nodes: RedisProcess[],
    readonly security: SecurityOptions,
  ) {}

  static async start(opts: { masters?: number; replicas?: number } & SecurityOptions = {}): Promise<RedisClusterFixture> {
    const count = (opts.masters ?? 3) * (1 + (opts.replicas ?? 0));
    const nodes: RedisProcess[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const bus = await freePort();
      nodes.push(
        new RedisProcess(port, [
          '--bind', '127.0.0.1',
          ...securityArgs(opts, port),
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(bus),
          '--cluster-node-timeout', '2000',
          ...(opts.tls ? ['--tls-cluster', 'yes'] : []),
        ]),
      );
    }
    const fixture = new RedisClusterFixture(nodes, opts);
    try {
      await Promise.all(nodes.map((n) => n.start()));
      await run('redis-cli', [
      ...cliArgs(opts),
      '--cluster', 'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(opts.replicas ?? 0),
      '--cluster-yes',
      ]);
      await fixture.waitHealthy();
    } catch (err) {
      await fixture.stop();
      throw err;
    }
    return fixture;
  }

  /** Every node reports cluster_state:ok and the same number of known nodes. */
  async waitHealthy(ms = 30_000): Promise<void> {
    await until('the cluster to be ok on every node', async () => {
      const live = this.nodes.filter((n) => n.running);
      const states = await Promise.all(
        live.map(async (n) => {
          const r = adminConnection(n.port, this.security);
          try {
            return await r.cluster('INFO');
          } finally {
            r.disconnect();
          }
        }),
      );
      return states.every((s) => /cluster_state:ok/.test(String(s)));
    }, ms);
  }

  get seeds(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** Flowgate's environment for this cluster (REDIS_URL left empty on purpose). */
  env(): Record<string, string> {
    return {
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: this.seeds,
      ...(this.security.acl && { REDIS_USERNAME: 'flowgate', REDIS_PASSWORD: this.security.acl.password }),
      ...(this.security.tls && { REDIS_TLS: 'true', REDIS_TLS_CA_FILE: this.security.tls.ca }),
    };
  }

  admin(i = 0): Redis {
    return adminConnection(this.nodes[i].port, this.security);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.remove()));
  }
}

/** Sentinel: one master, one replica, one sentinel watching them as `name`. */
export class RedisSentinelFixture {
  private constructor(
    readonly master: RedisProcess,
    readonly replica: RedisProcess,
    readonly sentinel: RedisProcess,
    readonly name: string,
    readonly security: SecurityOptions & { sentinelPassword?: string },
  ) {}

  static async start(opts: SecurityOptions & { name?: string; downAfterMs?: number } = {}): Promise<RedisSentinelFixture> {
    const name = opts.name ?? 'fgmaster';
    const [mp, rp, sp] = [await freePort(), await freePort(), await freePort()];
    const master = new RedisProcess(mp, ['--bind', '127.0.0.1', ...securityArgs(opts, mp)]);
    const replica = new RedisProcess(rp, ['--bind', '127.0.0.1', ...securityArgs(opts, rp), '--replicaof', '127.0.0.1', String(mp)]);
    await master.start();
    await replica.start();
    const sentinelPassword = opts.acl ? 'sentinel-password-for-tests' : undefined;
    const conf = [
      'bind 127.0.0.1',
      opts.tls
        ? `port 0\ntls-port ${sp}\ntls-cert-file ${opts.tls.cert}\ntls-key-file ${opts.tls.key}\ntls-ca-cert-file ${opts.tls.ca}\ntls-auth-clients no\ntls-replication yes`
        : `port ${sp}`,
      `sentinel monitor ${name} 127.0.0.1 ${mp} 1`,
      `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`,
      ...(opts.acl ? [`sentinel auth-user ${name} ${ADMIN.user}`, `sentinel auth-pass ${name} ${ADMIN.password}`, `requirepass ${sentinelPassword}`] : []),
      '',
    ].join('\n');
    const sentinel = new RedisProcess(sp, [], 'redis-sentinel', conf);
    await sentinel.start();
    const fixture = new RedisSentinelFixture(master, replica, sentinel, name, { ...opts, sentinelPassword });
    await until('the replica to be in sync', async () => {
      const r = adminConnection(rp, opts);
      try {
        return /master_link_status:up/.test(await r.info('replication'));
      } finally {
        r.disconnect();
      }
    });
    await until('the sentinel to know the replica', async () => (await fixture.sentinelCommand('replicas', name)).includes(String(rp)));
    return fixture;
  }

  async sentinelCommand(...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', [
      ...(this.security.tls ? ['--tls', '--cacert', this.security.tls.ca] : []),
      ...(this.security.sentinelPassword ? ['-a', this.security.sentinelPassword, '--no-auth-warning'] : []),
      '-p', String(this.sentinel.port),
      'SENTINEL', ...args,
    ]);
    return stdout;
  }

  /** The port the sentinel currently names as master. */
  async masterPort(): Promise<number> {
    const out = await this.sentinelCommand('get-master-addr-by-name', this.name);
    return Number(out.trim().split('\n')[1]);
  }

  env(): Record<string, string> {
    return {
      REDIS_URL: '',
      REDIS_SENTINELS: `127.0.0.1:${this.sentinel.port}`,
      REDIS_SENTINEL_NAME: this.name,
      ...(this.security.acl && { REDIS_USERNAME: 'flowgate', REDIS_PASSWORD: this.security.acl.password, REDIS_SENTINEL_PASSWORD: this.security.sentinelPassword! }),
      ...(this.security.tls && { REDIS_TLS: 'true', REDIS_SENTINEL_TLS: 'true', REDIS_TLS_CA_FILE: this.security.tls.ca }),
    };
  }

  /** The process currently serving as master. */
  async currentMaster(): Promise<RedisProcess> {
    const port = await this.masterPort();
    return port === this.master.port ? this.master : this.replica;
  }

  admin(port: number): Redis {
    return adminConnection(port, this.security);
  }

  async stop(): Promise<void> {
    await Promise.all([this.sentinel.remove(), this.master.remove(), this.replica.remove()]);
  }
}
