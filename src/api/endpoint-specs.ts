import { z } from 'zod';
import type { AnyRouteSpec } from '../http/guard.js';
import type { Operation } from './openapi.js';

/**
 * The endpoints Flowgate serves outside its Koa routers (the introspection hot path on the bare
 * request, the token endpoint's pre-processing, revocation, the rate-limit check) and the health
 * checks, described for the OpenAPI document. Their form readers are the provider's and the
 * endpoints' own (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1); these schemas state what they accept.
 */

export const OAuthErrorSchema = z
  .looseObject({
    error: z.string().meta({ description: 'RFC 6749 §5.2: invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope, slow_down (rate limited), ...' }),
    error_description: z.string().optional(),
  })
  .meta({ id: 'OAuthError' });

const clientAuthFields = {
  client_id: z.string().optional().meta({ description: 'client_secret_post, public clients' }),
  client_secret: z.string().optional().meta({ description: 'client_secret_post' }),
  client_assertion_type: z.literal('urn:ietf:params:oauth:client-assertion-type:jwt-bearer').optional().meta({ description: 'RFC 7523 §2.2 private_key_jwt' }),
  client_assertion: z.string().optional(),
};

const tokenRequest = z
  .object({
    grant_type: z.enum([
      'authorization_code',
      'refresh_token',
      'client_credentials',
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
      'urn:ietf:params:oauth:grant-type:token-exchange',
    ]),
    code: z.string().optional().meta({ description: 'authorization_code' }),
    redirect_uri: z.string().optional().meta({ description: 'authorization_code' }),
    code_verifier: z.string().optional().meta({ description: 'RFC 7636 PKCE' }),
    refresh_token: z.string().optional().meta({ description: 'refresh_token (rotated on use)' }),
    scope: z.string().optional(),
    resource: z.string().optional().meta({ description: 'RFC 8707: the API audience for RFC 9068 JWT access tokens' }),
    assertion: z.string().optional().meta({ description: 'RFC 7523 §2.1 jwt-bearer grant' }),
    subject_token: z.string().optional().meta({ description: 'RFC 8693: an API key to exchange for a short-lived JWT' }),
    subject_token_type: z.string().optional(),
    requested_token_type: z.string().optional(),
    ...clientAuthFields,
  })
  .meta({ id: 'TokenRequest' });

const tokenResponse = z
  .looseObject({
    access_token: z.string(),
    token_type: z.string(),
    expires_in: z.number().int(),
    refresh_token: z.string().optional(),
    id_token: z.string().optional(),
    scope: z.string().optional(),
    issued_token_type: z.string().optional().meta({ description: 'RFC 8693 §2.2.1' }),
  })
  .meta({ id: 'TokenResponse' });

const introspectionRequest = z
  .object({ token: z.string(), token_type_hint: z.string().optional(), ...clientAuthFields })
  .meta({ id: 'IntrospectionRequest' });

const introspectionResponse = z
  .looseObject({
    active: z.boolean(),
    scope: z.string().optional(),
    client_id: z.string().optional(),
    sub: z.string().optional(),
    exp: z.number().int().optional(),
    iat: z.number().int().optional(),
    iss: z.string().optional(),
    aud: z.union([z.string(), z.array(z.string())]).optional(),
    token_type: z.string().optional(),
    jti: z.string().optional(),
    credential_type: z.enum(['access_token', 'refresh_token', 'api_key', 'service_jwt']).optional().meta({ description: 'Flowgate' }),
    org_id: z.string().nullable().optional(),
    team_id: z.string().nullable().optional(),
    workflow_id: z.string().nullable().optional(),
    key_id: z.string().optional().meta({ description: 'API keys and tokens exchanged from them' }),
    inactive_reason: z.string().optional().meta({ description: "Inactive API keys, to the key's own organization: expired, revoked, rolled, query_key_disabled, unknown" }),
    expired_at: z.string().optional(),
  })
  .meta({ id: 'IntrospectionResponse', description: 'RFC 7662 §2.2 plus Flowgate fields; an inactive credential is `{"active": false}`' });

const revocationRequest = z.object({ token: z.string(), token_type_hint: z.string().optional(), ...clientAuthFields }).meta({ id: 'RevocationRequest' });

const rateLimitCheckRequest = z
  .object({
    category: z.string().regex(/^[a-z_]{1,32}$/).meta({ description: 'e.g. webhook' }),
    key: z.string().min(1).max(128).meta({ description: 'What is limited within the caller\'s organization, e.g. the client IP' }),
    ...clientAuthFields,
  })
  .meta({ id: 'RateLimitCheckRequest' });

const rateLimitCheckResponse = z
  .object({
    ratelimit: z
      .looseObject({
        policy: z.string(),
        limit: z.number(),
        remaining: z.number(),
        reset: z.number(),
        window: z.number(),
        reset_after: z.number().optional(),
        limited: z.boolean().optional(),
        retry_after: z.number().optional(),
      })
      .nullable(),
  })
  .meta({ id: 'RateLimitDecision' });

const health = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });
const readiness = z
  .object({
    status: z.enum(['ready', 'degraded', 'unavailable', 'draining']).describe('docs/operations.md, "Readiness and liveness": what each state means and what a balancer should do'),
    checks: z.record(z.string(), z.enum(['up', 'down'])),
    serves: z.object({ api_keys: z.boolean(), oauth: z.boolean() }).describe('What this instance can answer right now'),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'Readiness' });

const oauthErrors = (statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, { description: s === 429 ? 'Rate limited (slow_down, Retry-After)' : s === 401 ? 'Client authentication failed (invalid_client)' : 'Invalid request', schema: OAuthErrorSchema }]));

const op = (method: string, path: string, spec: AnyRouteSpec): Operation => ({ method, path, spec });

export const ENDPOINT_OPERATIONS: Operation[] = [
  op('post', '/token', {
    operationId: 'token',
    summary: 'Token endpoint (RFC 6749 §3.2)',
    description: 'authorization_code with PKCE, refresh_token (rotating), client_credentials, JWT bearer (RFC 7523) and token exchange of an API key (RFC 8693).',
    tags: ['OAuth'],
    access: 'client',
    body: tokenRequest,
    bodyType: 'form',
    responses: { 200: { description: 'Tokens', schema: tokenResponse }, ...oauthErrors([400, 401, 429]) },
  }),
  op('post', '/token/introspection', {
    operationId: 'introspect',
    summary: 'Introspection of any credential (RFC 7662)',
    description: 'Callers are clients with the introspection permission (resource servers). Opaque and JWT access tokens, refresh tokens (to their own client), API keys and service JWTs.',
    tags: ['OAuth'],
    access: 'client',
    body: introspectionRequest,
    bodyType: 'form',
    responses: { 200: { description: 'The credential, or {"active": false}', schema: introspectionResponse }, ...oauthErrors([400, 401, 429]) },
  }),
  op('post', '/token/revocation', {
    operationId: 'revoke',
    summary: 'Revocation (RFC 7009), JWT access tokens included',
    tags: ['OAuth'],
    access: 'client',
    body: revocationRequest,
    bodyType: 'form',
    responses: { 200: { description: 'Revoked (or unknown: RFC 7009 §2.2 answers 200 either way)', schema: null }, ...oauthErrors([400, 401]) },
  }),
  op('post', '/ratelimit/check', {
    operationId: 'checkRateLimit',
    summary: 'A rate-limit decision for requests that carry no Flowgate credential (e.g. inbound webhooks per IP)',
    tags: ['Rate limits'],
    access: 'client',
    body: rateLimitCheckRequest,
    bodyType: 'form',
    responses: { 200: { description: 'The decision; `ratelimit: null` when no limit applies', schema: rateLimitCheckResponse }, ...oauthErrors([400, 401]) },
  }),
  op('get', '/healthz', {
    operationId: 'health',
    summary: 'Liveness',
    tags: ['Operations'],
    access: 'public',
    responses: { 200: { description: 'The process runs', schema: health } },
  }),
  op('get', '/readyz', {
    operationId: 'ready',
    summary: 'Readiness: ready or degraded (Redis down, API keys still served) answer 200; unavailable (database down) and draining (shutting down) 503',
    tags: ['Operations'],
    access: 'public',
    responses: { 200: { description: 'Ready, or degraded', schema: readiness }, 503: { description: 'The database is down, or the instance is draining', schema: readiness } },
  }),
];
