import type Router from '@koa/router';
import { z } from 'zod';
import { errorStatuses, type AnyRouteSpec, type GuardedMiddleware } from '../http/guard.js';
import { ERROR_CODES, ErrorSchema } from '../http/responses.js';
import { describeScope, MANAGEMENT_SCOPES, OIDC_SCOPES, PLATFORM_SCOPES } from '../oauth/scopes.js';
import { ENDPOINT_OPERATIONS, OAuthErrorSchema } from './endpoint-specs.js';

/** One registered operation: the method and OpenAPI path of a router layer, and its guard's spec. */
export interface Operation {
  method: string;
  path: string;
  spec?: AnyRouteSpec;
}

/** `/api/v1/things/:id` → `/api/v1/things/{id}` (no trailing slash). */
export function openApiPath(koaPath: string): string {
  const p = koaPath.replace(/:(\w+)/g, '{$1}');
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/**
 * Every route the routers register, with the spec its guard carries (undefined when a route has no
 * guard: the document then lacks it, and the completeness test fails).
 */
export function collectOperations(routers: Router[]): Operation[] {
  const out: Operation[] = [];
  for (const router of routers) {
    for (const layer of router.stack) {
      if (layer.methods.length === 0 || typeof layer.path !== 'string') continue;
      const g = layer.stack.find((m) => typeof (m as Partial<GuardedMiddleware>).spec === 'object') as GuardedMiddleware | undefined;
      for (const method of layer.methods) {
        if (method === 'HEAD') continue;
        out.push({ method: method.toLowerCase(), path: openApiPath(layer.path), spec: g?.spec });
      }
    }
  }
  return out;
}

type Json = Record<string, unknown>;

/** zod → JSON Schema 2020-12 (OpenAPI 3.1's dialect), named schemas gathered under components. */
class SchemaCollector {
  readonly components: Record<string, Json> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): Json {
    const js = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
    const defs = (js.$defs ?? {}) as Record<string, Json>;
    delete js.$defs;
    delete js.$schema;
    for (const [id, def] of Object.entries(defs)) {
      const fixed = relink(def) as Json;
      const known = this.components[id];
      if (known && JSON.stringify(known) !== JSON.stringify(fixed)) {
        throw new Error(`OpenAPI: two different schemas named ${id} (${io}); give one of them another id`);
      }
      this.components[id] = fixed;
    }
    return relink(js) as Json;
  }
}

function relink(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(relink);
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) out[k] = k === '$ref' && typeof x === 'string' ? x.replace(/^#\/\$defs\//, '#/components/schemas/') : relink(x);
    return out;
  }
  return v;
}

const AUTH_SCHEMES = ['bearer', 'apiKey', 'apiKeyQuery', 'oauth2'] as const;

function security(spec: AnyRouteSpec): Json[] {
  if (spec.access === 'public' || spec.access === 'signature') return [];
  // client_secret_post and private_key_jwt travel in the form body (its schema names the fields).
  if (spec.access === 'client') return [{ clientSecretBasic: [] }, {}];
  const scopes = [...spec.access.scopes];
  return [...AUTH_SCHEMES.map((s) => ({ [s]: scopes })), { dashboardSession: [] }];
}

function accessWords(spec: AnyRouteSpec): string | undefined {
  const a = spec.access;
  if (typeof a !== 'object') return undefined;
  const parts = [a.scopes.length ? `Scopes: ${a.scopes.map((s) => `\`${s}\``).join(', ')}.` : 'Any credential of the organization.'];
  if (a.admin) parts.push('The user behind the credential must be an owner or admin.');
  if (a.restricted === 'refuse') parts.push('Workflow- or team-restricted credentials are refused (403 RESTRICTED_CREDENTIAL).');
  return parts.join(' ');
}

function operationObject(path: string, spec: AnyRouteSpec, schemas: SchemaCollector): Json {
  const parameters: Json[] = [];
  const addParams = (schema: z.ZodType | undefined, where: 'path' | 'query') => {
    if (!schema) return;
    const js = schemas.convert(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, prop] of Object.entries(js.properties ?? {})) {
      const { description, ...rest } = prop as Json & { description?: string };
      parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), ...(description && { description }), schema: rest });
    }
  };
  addParams(spec.params, 'path');
  // Path parameters a spec does not describe still belong to the operation.
  for (const m of path.matchAll(/\{(\w+)\}/g)) {
    if (!parameters.some((p) => p.name === m[1] && p.in === 'path')) parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
  }
  addParams(spec.query, 'query');

  const responses: Json = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    responses[status] = {
      description: r.description,
      ...(r.schema && { content: { [r.contentType ?? 'application/json']: { schema: schemas.convert(r.schema, 'output') } } }),
    };
  }
  if (spec.bodyType !== 'form') {
    for (const status of errorStatuses(spec, path)) responses[status] ??= { $ref: `#/components/responses/Error${status}` };
  }
  const words = [spec.description, accessWords(spec)].filter(Boolean).join('\n\n');
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(words && { description: words }),
    tags: spec.tags,
    ...(parameters.length && { parameters }),
    ...(spec.body && {
      requestBody: {
        required: true,
        content: { [spec.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json']: { schema: schemas.convert(spec.body, 'input') } },
      },
    }),
    responses,
    security: security(spec),
    ...(typeof spec.access === 'object' && { 'x-required-scopes': [...spec.access.scopes] }),
  };
}

export interface OpenApiOptions {
  issuer: string;
  version: string;
  routers: Router[];
}

/**
 * The OpenAPI 3.1 document of Flowgate's API: every guarded route of the given routers (its schemas
 * are the ones the guard validates with) and the endpoints served outside them (token, introspection,
 * revocation, rate-limit check, health). Built once per process.
 */
export function buildOpenApiDocument(o: OpenApiOptions): Json {
  const schemas = new SchemaCollector();
  const paths: Record<string, Json> = {};
  const ops = [...collectOperations(o.routers), ...ENDPOINT_OPERATIONS];
  for (const op of ops) {
    if (!op.spec) continue;
    paths[op.path] ??= {};
    (paths[op.path] as Json)[op.method] = operationObject(op.path, op.spec, schemas);
  }
  const errorRef = schemas.convert(ErrorSchema, 'output');
  schemas.convert(OAuthErrorSchema, 'output');
  const responses: Json = {};
  for (const [status, e] of Object.entries(ERROR_CODES)) {
    responses[`Error${status}`] = { description: `${e.description}. Codes: ${e.codes.join(', ')}.`, content: { 'application/json': { schema: errorRef } } };
  }
  const scopes = Object.fromEntries([...Object.keys(PLATFORM_SCOPES), ...Object.keys(MANAGEMENT_SCOPES), ...Object.keys(OIDC_SCOPES)].map((s) => [s, describeScope(s)]));
  const tags = [...new Set(ops.flatMap((op) => op.spec?.tags ?? []))].map((name) => ({ name }));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Flowgate API',
      version: o.version,
      description: [
        "Flowgate's management API (`/api/v1`), the OAuth endpoints it serves in front of the provider, and its health checks.",
        'JSON answers are `{"success": true, "data": ...}`; lists add `next_cursor` (pass it as `cursor`, with `limit` 1-200). Errors are `{"success": false, "error": {"code", "message", "details"}}`; `details.issues` names the input fields at fault.',
        'OAuth endpoints answer as RFC 6749 §5.2 says: `{"error", "error_description"}`.',
      ].join('\n\n'),
    },
    servers: [{ url: o.issuer }],
    tags,
    paths,
    components: {
      schemas: schemas.components,
      responses,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key, or an OAuth access token (opaque or RFC 9068 JWT) issued by this server' },
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'An API key' },
        apiKeyQuery: { type: 'apiKey', in: 'query', name: 'api-key', description: 'An API key in the query string, when the organization allows it (logged redacted)' },
        oauth2: {
          type: 'oauth2',
          flows: {
            clientCredentials: { tokenUrl: `${o.issuer}/token`, scopes },
            authorizationCode: { authorizationUrl: `${o.issuer}/auth`, tokenUrl: `${o.issuer}/token`, scopes },
          },
        },
        dashboardSession: { type: 'apiKey', in: 'cookie', name: 'flowgate_dash', description: "A signed-in dashboard session; needs the session's CSRF token in X-CSRF-Token (and X-Org-Id to pick an organization)" },
        clientSecretBasic: {
          type: 'http',
          scheme: 'basic',
          description: 'RFC 6749 §2.3.1 client_secret_basic. Clients may instead authenticate in the form body: client_secret_post (client_id, client_secret) or RFC 7523 private_key_jwt (client_assertion_type, client_assertion).',
        },
      },
    },
  };
}
