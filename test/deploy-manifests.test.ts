import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { redisMode } from '../src/config/schema.js';
import { freePort, projectRoot } from './support/process.js';
import { startServer } from '../src/server.js';
import { createLogger } from '../src/http/logger.js';
import { startTestServer, type TestEnv } from './support/server.js';

// The deployment files are code too: every Kustomize overlay renders with kubectl, every object
// passes the Kubernetes schemas (the ServiceMonitor its CRD's), and what they configure is what the
// server serves and reads: probe paths and ports, the metrics path, and only environment variables
// that src/config/load.ts (the one reader of the environment) knows.
const run = promisify(execFile);
const OVERLAYS = { 'redis-standalone': 'standalone', 'redis-sentinel': 'sentinel', 'redis-cluster': 'cluster' } as const;
/** Read by Node itself, not by Flowgate. */
const RUNTIME_VARS = new Set(['NODE_OPTIONS']);

type Model = new (data: any) => { validate(): void };
type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

/** Every variable name load.ts reads from the environment. */
const readByServer = new Set([...readFileSync(path.join(projectRoot, 'src/config/load.ts'), 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]));

async function render(overlay: string): Promise<Obj[]> {
  const { stdout } = await run('kubectl', ['kustomize', path.join(projectRoot, 'deploy/kubernetes/overlays', overlay)]);
  return parseAllDocuments(stdout).map((d) => d.toJSON() as Obj);
}

/** The kubernetes-models class for each kind the overlays render (the ServiceMonitor: its CRD's). */
const MODELS: Record<string, Model> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

async function modelOf(o: Obj): Promise<Model> {
  const model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}: add its model`);
  return model;
}

let server: TestEnv;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.close());

describe.each(Object.entries(OVERLAYS))('Kubernetes overlay %s', (overlay, mode) => {
  let objects: Obj[];
  const one = (kind: string, name?: string) => {
    const found = objects.filter((o) => o.kind === kind && (!name || o.metadata.name === name || o.metadata.name.startsWith(`${name}-`)));
    expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
    return found[0];
  };
  beforeAll(async () => {
    objects = await render(overlay);
  });

  it('renders the expected objects, each valid against its schema', async () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'Secret', 'Service', 'ServiceMonitor']);
    for (const o of objects) {
      const Model = await modelOf(o);
      expect(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
    }
    // The schemas do catch mistakes (a string where a port number belongs).
    const broken = structuredClone(one('Deployment'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'three thousand';
    const Deployment = await modelOf(broken);
    expect(() => new Deployment(broken).validate()).toThrow(/containerPort/);
  });

  it('sets only variables the server reads, and they load into a valid configuration of this Redis mode', async () => {
    const config = one('ConfigMap', 'flowgate-config').data as Record<string, string>;
    const secrets = one('Secret', 'flowgate-secrets').stringData as Record<string, string>;
    const container = one('Deployment').spec.template.spec.containers[0];
    const names = [...Object.keys(config), ...Object.keys(secrets), ...(container.env ?? []).map((e: { name: string }) => e.name)];
    expect(names.filter((n) => !readByServer.has(n) && !RUNTIME_VARS.has(n))).toEqual([]);
    // The placeholders cannot run: the server refuses them and names them.
    let refused = '';
    try {
      loadConfig({ ...config, ...secrets });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      refused = (err as Error).message;
    }
    expect(refused).toMatch(/COOKIE_SECRETS: each cookie secret needs at least 32 characters/);
    expect(refused).toMatch(/API_KEY_PEPPER: needs at least 16 characters/);
    // With real secrets, they make the configuration of this overlay's Redis mode.
    const loaded = loadConfig({ ...config, ...secrets, COOKIE_SECRETS: 'c'.repeat(32), API_KEY_PEPPER: 'p'.repeat(16) });
    expect(redisMode(loaded)).toBe(mode);
    expect(loaded.env).toBe('production');
    expect(loaded.trustProxy).toBe(true);
  });

  it('wires ports, probes, volumes and selectors to what the server and the other objects expect', async () => {
    const config = one('ConfigMap', 'flowgate-config').data as Record<string, string>;
    const deployment = one('Deployment');
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0];
    const http = container.ports.find((p: { name: string }) => p.name === 'http');
    expect(http.containerPort).toBe(Number(config.PORT));
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    // Every configMapRef / secretRef names an object in the render.
    const configMaps = objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    const secretNames = objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name);
    for (const c of [...pod.spec.initContainers, ...pod.spec.containers]) {
      for (const from of c.envFrom) {
        if (from.configMapRef) expect(configMaps).toContain(from.configMapRef.name);
        if (from.secretRef) expect(secretNames).toContain(from.secretRef.name);
      }
    }
    // The signing keys are mounted where KEYS_DIR says, read-only, from the shared Secret.
    const keys = container.volumeMounts.find((m: { name: string }) => m.name === 'signing-keys');
    expect(keys).toMatchObject({ mountPath: config.KEYS_DIR, readOnly: true });
    expect(pod.spec.volumes.find((v: { name: string }) => v.name === 'signing-keys').secret.secretName).toBe('flowgate-signing-keys');
    expect(Object.keys(one('Secret', 'flowgate-signing-keys').stringData)).toEqual(['jwks.private.json']);
    // The migration init container runs the script its ConfigMap carries.
    const migrate = pod.spec.initContainers.find((c: { name: string }) => c.name === 'migrate');
    const script = migrate.command.at(-1) as string;
    const mount = migrate.volumeMounts.find((m: { mountPath: string }) => script.startsWith(`${m.mountPath}/`));
    const source = pod.spec.volumes.find((v: { name: string }) => v.name === mount.name).configMap.name;
    expect(Object.keys(objects.find((o) => o.metadata.name === source)!.data)).toContain(path.basename(script));
    // A read-only root file system still needs a writable /tmp (tsx's cache).
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/tmp')).toBe(true);
    // Selectors select the pods; the autoscaler scales this Deployment; the monitor scrapes a named port.
    const labels = pod.metadata.labels as Record<string, string>;
    const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    const service = one('Service');
    expect(selects(service.spec.selector)).toBe(true);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);
    expect(selects(one('PodDisruptionBudget').spec.selector.matchLabels)).toBe(true);
    expect(service.spec.ports[0].targetPort).toBe('http');
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });
    expect(deployment.spec.replicas).toBeUndefined(); // the autoscaler owns it
    expect(hpa.spec.minReplicas).toBeGreaterThan(one('PodDisruptionBudget').spec.maxUnavailable);
    const monitor = one('ServiceMonitor');
    expect(Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => service.metadata.labels![k] === v)).toBe(true);
    expect(service.spec.ports.map((p: { name: string }) => p.name)).toContain(monitor.spec.endpoints[0].port);
  });

  it('probes and scrapes paths and ports the server answers', async () => {
    const deployment = one('Deployment');
    const container = deployment.spec.template.spec.containers[0];
    for (const p of [container.readinessProbe.httpGet.path, container.livenessProbe.httpGet.path]) {
      const res = await fetch(new URL(p, server.url));
      expect(res.status, p).toBe(200);
    }
    // The monitor scrapes the port production serves /metrics on (METRICS_PORT's default), by name.
    const endpoint = one('ServiceMonitor').spec.endpoints[0];
    const servicePort = one('Service').spec.ports.find((p: { name: string }) => p.name === endpoint.port);
    const containerPort = container.ports.find((p: { name: string }) => p.name === servicePort.targetPort);
    const production = loadConfig({ NODE_ENV: 'production', COOKIE_SECRETS: 'c'.repeat(40), API_KEY_PEPPER: 'p'.repeat(40), DATA_DIR: server.config.dataDir });
    expect(containerPort.containerPort).toBe(production.metrics.port);
    const port = await freePort();
    const own = await startServer({ ...server.config, port: await freePort(), metrics: { ...server.config.metrics, port, token: undefined } }, createLogger('silent'));
    try {
      const res = await fetch(`http://127.0.0.1:${port}${endpoint.path}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^# (HELP|TYPE) flowgate_/m);
    } finally {
      await own.close();
    }
  });
});

describe('docker-compose.cluster.yml', () => {
  const file = path.join(projectRoot, 'deploy/docker-compose.cluster.yml');
  const compose = parse(readFileSync(file, 'utf8'), { merge: true }) as { services: Record<string, any> };

  it('runs three Flowgate replicas behind HAProxy on a 3-master Redis Cluster and PostgreSQL, with variables the server reads', () => {
    const s = compose.services;
    expect(s.flowgate.deploy.replicas).toBe(3);
    expect(Object.keys(s).filter((n) => /^redis-\d$/.test(n))).toHaveLength(3);
    expect(s.postgres).toBeDefined();
    expect(s.haproxy).toBeDefined();
    const env = s.flowgate.environment as Record<string, string>;
    const names = Object.keys(env);
    expect(names.filter((n) => !readByServer.has(n) && !RUNTIME_VARS.has(n))).toEqual([]);
    expect(env.REDIS_CLUSTER_NODES.split(',')).toHaveLength(3);
    // Migrations and keys once, before any replica starts.
    expect(s.flowgate.depends_on.migrate.condition).toBe('service_completed_successfully');
    expect(s.flowgate.depends_on['redis-cluster-init'].condition).toBe('service_completed_successfully');
    const cfg = readFileSync(path.join(projectRoot, 'deploy/docker-compose.cluster/haproxy.cfg'), 'utf8');
    expect(cfg).toMatch(/http-check send meth GET uri \/readyz/);
    expect(cfg).toMatch(/server-template flowgate 3 flowgate:3000/);
  });
});

describe('the migration init container (deploy/kubernetes/base/migrate-exclusively.mjs)', () => {
  it('three pods starting at once on an empty database: every one succeeds, each migration is applied once', async () => {
    const { createTestDatabase } = await import('./support/server.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const db = await createTestDatabase();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'flowgate-migrate-'));
    try {
      const env = { ...process.env, NODE_ENV: 'test', DATABASE_URL: db.url, DATA_DIR: dataDir, COOKIE_SECRETS: 'c'.repeat(32), API_KEY_PEPPER: 'p'.repeat(16), FLOWGATE_HOME: projectRoot };
      const script = path.join(projectRoot, 'deploy/kubernetes/base/migrate-exclusively.mjs');
      const runs = await Promise.allSettled(Array.from({ length: 3 }, () => run(process.execPath, [script], { env, cwd: projectRoot, timeout: 120_000 })));
      expect(runs.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      const pg = (await import('pg')).default;
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        const { rows } = await c.query('SELECT name, count(*)::int AS n FROM flowgate_migrations GROUP BY name');
        expect(rows.length).toBeGreaterThan(0);
        expect(rows.every((r: { n: number }) => r.n === 1)).toBe(true);
      } finally {
        await c.end();
      }
    } finally {
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 150_000);
});
