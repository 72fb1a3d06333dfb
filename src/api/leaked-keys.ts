import Router from '@koa/router';
import { z } from 'zod';
import { parseByteLimit } from '../http/body.js';
import { guard, parse } from '../http/guard.js';
import { ok } from '../http/responses.js';
import { readRawBody } from '../http/raw-body.js';
import { AppError } from '../http/errors.js';
import { LeakReportAuthError, type LeakedKeysService } from '../apikeys/leaked-keys.js';

const reportBody = z
  .array(
    z.object({
      token: z.string().min(1).max(500),
      type: z.string().max(100).optional(),
      url: z.string().max(2048).optional(),
      source: z.string().max(100).optional(),
    }),
  )
  .min(1)
  .max(1000)
  .meta({ id: 'LeakedKeyReport' });

/**
 * `POST /api/v1/auth/api-keys/leaked`: authenticated by the scanner's signature over the raw body
 * (headers `x-scanner-key-id` / `x-scanner-signature`, or GitHub's `Github-Public-Key-Identifier` /
 * `Github-Public-Key-Signature`). The answer is the same whether or not any key matched.
 */
export function leakedKeyRoutes(d: { leaked: LeakedKeysService; bodyLimit: string }): Router {
  const r = new Router();
  const spec = {
    operationId: 'reportLeakedKeys',
    summary: 'Report leaked API keys (secret scanners)',
    description:
      "Authenticated by the scanner's signature over the raw body: `x-scanner-key-id` and `x-scanner-signature` (or GitHub's `Github-Public-Key-Identifier` and `Github-Public-Key-Signature`). The answer is the same whether or not a key matched; matching keys are revoked.",
    tags: ['API keys'],
    access: 'signature' as const,
    body: reportBody,
    rawBody: true,
    responses: { 202: { description: 'Received', schema: ok(z.object({ received: z.number().int() })) } },
  };
  r.post('/api/v1/auth/api-keys/leaked', guard(spec, async (ctx) => {
    const raw = await readRawBody(ctx.req, parseByteLimit(d.bodyLimit));
    const keyId = ctx.get('x-scanner-key-id') || ctx.get('github-public-key-identifier') || undefined;
    const signature = ctx.get('x-scanner-signature') || ctx.get('github-public-key-signature') || undefined;
    try {
      d.leaked.authenticate(keyId, signature, raw);
    } catch (err) {
      if (err instanceof LeakReportAuthError) throw new AppError(401, 'INVALID_SIGNATURE', 'The report signature is missing or does not verify');
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new AppError(400, 'INVALID_JSON', 'Request body is not valid JSON');
    }
    const reports = parse(reportBody, json);
    await d.leaked.report({ type: 'system', id: `scanner:${keyId}`, ip: ctx.ip }, reports);
    ctx.status = 202;
    ctx.body = { success: true, data: { received: reports.length } };
  }));
  return r;
}
