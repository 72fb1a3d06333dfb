import { randomBytes, randomUUID } from 'node:crypto';
import Koa, { type Context } from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import { flowgateErrors, FlowgateError, MemoryReplayStore } from '@flowgate/sdk';
import {
  flowgateAuth,
  requireScope,
  requireWorkflowAccess,
  checkOrganization,
  sendError,
  ipRateLimit,
  webhookReceiver,
  type KoaFlowgateOptions,
  type FlowgateIdentity,
} from '@flowgate/sdk/koa';

/**
 * An example workflow service: the workflow API's endpoints (developer triggers and status, workflows,
 * runs, connections, inbound webhooks), protected only through @flowgate/sdk, each route with its
 * scope. Data lives in memory, per organization.
 */
interface Workflow {
  id: string;
  orgId: string;
  name: string;
  definition: unknown;
  /** Signs inbound webhooks that trigger this workflow (Standard Webhooks); shown once, at creation. */
  webhookSecret: string;
  createdAt: string;
}
interface Run {
  id: string;
  orgId: string;
  workflowId: string;
  status: 'completed';
  input: unknown;
  output: unknown;
  createdAt: string;
}
interface Connection {
  id: string;
  orgId: string;
  name: string;
  type: string;
}

export function buildWorkflowService(auth: KoaFlowgateOptions) {
  const workflows = new Map<string, Workflow>();
  const runs = new Map<string, Run>();
  const connections = new Map<string, Connection>();
  const app = new Koa();
  const router = new Router();
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: '100kb' });
  const authenticate = flowgateAuth(auth);
  const view = ({ webhookSecret: _secret, ...wf }: Workflow) => wf;

  const who = (ctx: Context) => ctx.state.flowgate as FlowgateIdentity;
  const ok = (ctx: Context, data: unknown, status = 200) => {
    ctx.status = status;
    ctx.body = { success: true, data };
  };
  const notFound = (what: string) => new FlowgateError(404, 'NOT_FOUND', `${what} not found`);
  const workflowParam = (ctx: Context) => (ctx.params as Record<string, string>).workflow_id ?? (ctx.params as Record<string, string>).id;

  /** The workflow exists in the caller's organization (a workflow of another org is refused). */
  const loadWorkflow = (ctx: Context): Workflow => {
    const wf = workflows.get(workflowParam(ctx));
    if (!wf) throw notFound('Workflow');
    checkOrganization(ctx, wf.orgId);
    return wf;
  };

  const runWorkflow = (ctx: Context, wf: Workflow, input: unknown): Run => {
    const run: Run = {
      id: `run_${randomUUID()}`,
      orgId: wf.orgId,
      workflowId: wf.id,
      status: 'completed',
      input,
      output: { message: `Workflow "${wf.name}" ran`, triggered_by: who(ctx).keyId ?? who(ctx).clientId },
      createdAt: new Date().toISOString(),
    };
    runs.set(run.id, run);
    return run;
  };

  // Developer workflow triggers.
  router.post('/developer/api/workflows/:workflow_id/trigger/sync', requireScope('workflows:execute'), requireWorkflowAccess(workflowParam), json, (ctx) => {
    const wf = loadWorkflow(ctx);
    const body = (ctx.request.body ?? {}) as { human_msg?: unknown; file_urls?: unknown };
    if (body.human_msg !== undefined && typeof body.human_msg !== 'string') throw new FlowgateError(400, 'VALIDATION_ERROR', 'human_msg must be a string');
    if (body.file_urls !== undefined && (!Array.isArray(body.file_urls) || body.file_urls.some((u) => typeof u !== 'string'))) {
      throw new FlowgateError(400, 'VALIDATION_ERROR', 'file_urls must be an array of strings');
    }
    const run = runWorkflow(ctx, wf, { human_msg: body.human_msg ?? null, file_urls: body.file_urls ?? [] });
    ok(ctx, { workflow_instance_id: run.id, status: run.status, output: run.output });
  });
  router.get('/developer/api/workflow_instances/:id/status', requireScope('runs:read'), (ctx) => {
    const run = runs.get(ctx.params.id);
    if (!run) throw notFound('Workflow instance');
    checkOrganization(ctx, run.orgId);
    requireWorkflowOf(ctx, run.workflowId);
    ok(ctx, { workflow_instance_id: run.id, status: run.status });
  });

  // The Workflows API.
  router.get('/api/v1/workflows', requireScope('workflows:read'), (ctx) => {
    const id = who(ctx);
    ok(ctx, [...workflows.values()].filter((w) => w.orgId === id.orgId && (!id.workflowId || w.id === id.workflowId)).map(view));
  });
  router.post('/api/v1/workflows', requireScope('workflows:write'), json, (ctx) => {
    const id = who(ctx);
    if (id.workflowId) throw flowgateErrors.wrongWorkflow('API key');
    const body = (ctx.request.body ?? {}) as { name?: unknown; definition?: unknown };
    if (typeof body.name !== 'string' || !body.name.trim()) throw new FlowgateError(400, 'VALIDATION_ERROR', 'name is required');
    const wf: Workflow = {
      id: `wf_${randomUUID().slice(0, 8)}`,
      orgId: id.orgId!,
      name: body.name.trim(),
      definition: body.definition ?? null,
      webhookSecret: `whsec_${randomBytes(24).toString('base64')}`,
      createdAt: new Date().toISOString(),
    };
    workflows.set(wf.id, wf);
    ok(ctx, { ...view(wf), webhook_secret: wf.webhookSecret }, 201);
  });
  router.get('/api/v1/workflows/:id', requireScope('workflows:read'), requireWorkflowAccess(workflowParam), (ctx) => ok(ctx, view(loadWorkflow(ctx))));
  router.put('/api/v1/workflows/:id', requireScope('workflows:write'), requireWorkflowAccess(workflowParam), json, (ctx) => {
    const wf = loadWorkflow(ctx);
    const body = (ctx.request.body ?? {}) as { name?: unknown; definition?: unknown };
    if (body.name !== undefined && (typeof body.name !== 'string' || !body.name.trim())) throw new FlowgateError(400, 'VALIDATION_ERROR', 'name must be a non-empty string');
    if (typeof body.name === 'string') wf.name = body.name.trim();
    if (body.definition !== undefined) wf.definition = body.definition;
    ok(ctx, view(wf));
  });
  router.post('/api/v1/workflows/:id/run', requireScope('workflows:execute'), requireWorkflowAccess(workflowParam), json, (ctx) => {
    const wf = loadWorkflow(ctx);
    ok(ctx, runWorkflow(ctx, wf, ctx.request.body ?? null), 201);
  });
  router.get('/api/v1/runs', requireScope('runs:read'), (ctx) => {
    const id = who(ctx);
    ok(ctx, [...runs.values()].filter((r) => r.orgId === id.orgId && (!id.workflowId || r.workflowId === id.workflowId)));
  });
  router.get('/api/v1/runs/:id', requireScope('runs:read'), (ctx) => {
    const run = runs.get(ctx.params.id);
    if (!run) throw notFound('Run');
    checkOrganization(ctx, run.orgId);
    requireWorkflowOf(ctx, run.workflowId);
    ok(ctx, run);
  });
  router.get('/api/v1/connections', requireScope('connections:read'), (ctx) => {
    ok(ctx, [...connections.values()].filter((c) => c.orgId === who(ctx).orgId));
  });
  router.post('/api/v1/connections', requireScope('connections:write'), json, (ctx) => {
    const body = (ctx.request.body ?? {}) as { name?: unknown; type?: unknown };
    if (typeof body.name !== 'string' || typeof body.type !== 'string') throw new FlowgateError(400, 'VALIDATION_ERROR', 'name and type are required strings');
    const c: Connection = { id: `conn_${randomUUID().slice(0, 8)}`, orgId: who(ctx).orgId!, name: body.name, type: body.type };
    connections.set(c.id, c);
    ok(ctx, c, 201);
  });
  router.delete('/api/v1/connections/:id', requireScope('connections:write'), (ctx) => {
    const c = connections.get(ctx.params.id);
    if (!c) throw notFound('Connection');
    checkOrganization(ctx, c.orgId);
    connections.delete(c.id);
    ctx.status = 204;
  });

  function requireWorkflowOf(ctx: Context, workflowId: string) {
    const id = who(ctx);
    if (id.workflowId && id.workflowId !== workflowId) throw flowgateErrors.wrongWorkflow('API key');
  }

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof FlowgateError) return sendError(ctx, err);
      const e = err as { status?: number; expose?: boolean; message?: string };
      if (e.status && e.status < 500) return sendError(ctx, new FlowgateError(e.status, 'BAD_REQUEST', e.expose && e.message ? e.message : 'Bad request'));
      throw err;
    }
  });
  // Inbound webhooks carry no Flowgate credential: they are verified by their signature and limited
  // per client IP (the webhook category, decided by Flowgate so the limit holds across replicas).
  const hooks = new Router();
  const replays = new MemoryReplayStore();
  hooks.post(
    '/api/v1/hooks/:workflow_id',
    ipRateLimit({ issuer: auth.issuer, clientId: auth.clientId, clientSecret: auth.clientSecret, category: 'webhook', fetch: auth.fetch }),
    async (ctx, next) => {
      const wf = workflows.get(ctx.params.workflow_id);
      if (!wf) throw notFound('Workflow');
      await webhookReceiver({ secret: wf.webhookSecret, replayStore: replays })(ctx, next);
    },
    (ctx) => {
      const wf = workflows.get(ctx.params.workflow_id)!;
      const event = ctx.state.webhook!;
      const run: Run = {
        id: `run_${randomUUID()}`,
        orgId: wf.orgId,
        workflowId: wf.id,
        status: 'completed',
        input: { type: event.type, data: event.data },
        output: { message: `Workflow "${wf.name}" ran`, triggered_by: `webhook ${event.id}` },
        createdAt: new Date().toISOString(),
      };
      runs.set(run.id, run);
      ok(ctx, { workflow_instance_id: run.id, status: run.status }, 202);
    },
  );
  app.use(hooks.routes());
  app.use(authenticate);
  app.use(router.routes()).use(router.allowedMethods());
  return { app, authenticate, routes: router, data: { workflows, runs, connections } };
}
