import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { AppError, errors, type ValidationIssue } from './errors.js';

/**
 * What a credential must be to call a route:
 * - `scopes`: every one of them (403 INSUFFICIENT_PERMISSIONS naming the first missing);
 * - `admin`: the user behind the credential is an owner or admin of the organization (credentials
 *   made by the CLI and client-credentials tokens of the organization's own clients act as admins);
 * - `restricted`: what a workflow- or team-restricted credential may do here. 'refuse' for
 *   organization-wide actions (403 RESTRICTED_CREDENTIAL); 'allow' where the service itself confines
 *   the action to the credential's workflow or team.
 */
export interface Access {
  scopes: readonly string[];
  admin?: boolean;
  restricted: 'refuse' | 'allow';
}

/** A response body: its zod schema (null: none), the media type, and words for the document. */
export interface ResponseSpec {
  description: string;
  schema: z.ZodType | null;
  contentType?: string;
}

/**
 * One operation: what the route reads (validated here, at the edge), who may call it, and what it
 * answers. The same object feeds the OpenAPI document (src/api/openapi.ts), so the document cannot
 * drift from what the route accepts.
 */
export interface RouteSpec<P extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined> {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /**
   * `public`: no credential (health checks, the document itself); `signature`: the route verifies a
   * signature over the body; `client`: OAuth client authentication (the endpoints in front of the provider).
   */
  access: Access | 'public' | 'signature' | 'client';
  params?: P;
  query?: Q;
  body?: B;
  /** `form` for application/x-www-form-urlencoded bodies (the OAuth endpoints); JSON otherwise. */
  bodyType?: 'json' | 'form';
  /** The route reads the raw body itself (it verifies a signature over it first); `body` documents it. */
  rawBody?: boolean;
  responses: Record<number, ResponseSpec>;
  /** Error statuses besides the ones every guarded route can answer (see errorStatuses). */
  errors?: number[];
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface GuardInput<P, Q, B> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
}

export type AnyRouteSpec = RouteSpec<z.ZodType | undefined, z.ZodType | undefined, z.ZodType | undefined>;

/** A route handler that carries its spec, for the OpenAPI collector. */
export type GuardedMiddleware = Middleware & { spec: AnyRouteSpec };

/**
 * The one validation guard of the JSON API (modelled on Logto's koa-guard): checks the caller's
 * access, then validates path parameters, query and body with the spec's zod schemas, and calls the
 * handler with the parsed, typed values. Services therefore receive typed input. Invalid input is a
 * 400 VALIDATION_ERROR whose `details.issues` names every field at fault (never the input itself).
 */
export function guard<P extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  spec: RouteSpec<P, Q, B>,
  handler: (ctx: Context, input: GuardInput<P, Q, B>) => Promise<void>,
): GuardedMiddleware {
  const mw = (async (ctx: Context) => {
    if (typeof spec.access === 'object') {
      // Installed by the authentication middleware with the resolved principal (src/auth/middleware.ts).
      const check = ctx.state.checkAccess as ((a: Access) => void) | undefined;
      if (!check) throw new AppError(500, 'INTERNAL_ERROR', 'Route used without authentication');
      check(spec.access);
    }
    const input = {
      params: (spec.params ? parse(spec.params, ctx.params ?? {}) : undefined) as Out<P>,
      query: (spec.query ? parse(spec.query, ctx.query) : undefined) as Out<Q>,
      body: (spec.body && !spec.rawBody ? parse(spec.body, ctx.request.body ?? {}) : undefined) as Out<B>,
    };
    await handler(ctx, input);
  }) as unknown as GuardedMiddleware;
  mw.spec = spec as unknown as AnyRouteSpec;
  return mw;
}

/** Validates a value with a schema: its typed output, or 400 VALIDATION_ERROR with every issue. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw errors.invalid(issuesOf(r.error));
}

/** zod issues as the API names them: dotted paths, one issue per unknown field. */
export function issuesOf(err: z.ZodError): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const i of err.issues) {
    const base = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) out.push({ path: base ? `${base}.${k}` : k, message: `Unknown field "${k}"` });
    } else {
      out.push({ path: base, message: i.message });
    }
  }
  return out;
}

/** The error statuses a guarded route can answer besides its own `errors`. */
export function errorStatuses(spec: AnyRouteSpec, path: string): number[] {
  const s = new Set<number>(spec.errors ?? []);
  if (spec.params || spec.query || spec.body) s.add(400);
  if (typeof spec.access === 'object') [400, 401, 403, 429].forEach((x) => s.add(x));
  if (spec.access === 'signature') s.add(401);
  if (/[:{]/.test(path)) s.add(404);
  if (spec.body) [413, 415].forEach((x) => s.add(x));
  return [...s].sort();
}
