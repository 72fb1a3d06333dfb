import type { Context, Next } from 'koa';
import type { ZodType } from 'zod';
import { bodyParser } from '@koa/bodyparser';
import { AppError } from './errors.js';
import { readRawBody } from './raw-body.js';
import { findUnsafeText } from './unsafe-text.js';
import { unsafeTextError } from './unsafe-input.js';

/** No Flowgate input nests deeper; deeper JSON is refused before anything walks it. */
export const MAX_JSON_DEPTH = 32;

/** True when `value` nests objects or arrays deeper than `max` (iterative: no stack to exhaust). */
function tooDeep(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
  }
  return false;
}

declare module 'koa' {
  interface Request {
    /** Set by `jsonBody()` (and by @koa/bodyparser on the form routes). */
    body?: unknown;
  }
}

export interface JsonBodyOptions {
  /** Maximum body size: bytes, or a string like "100kb" / "1mb" (config.bodyLimit). */
  limit: string | number;
}

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };

/** "100kb" → 102400. Throws on anything else so a bad limit fails at start, not per request. */
export function parseByteLimit(limit: string | number): number {
  if (typeof limit === 'number') return limit;
  const m = /^(\d+)(b|kb|mb)$/i.exec(limit.trim());
  if (!m) throw new Error(`invalid body limit "${limit}"`);
  return Number(m[1]) * UNITS[m[2].toLowerCase()];
}

function isJsonType(ctx: Context): boolean {
  // application/json, or any structured-syntax "+json" type (RFC 6839 §3.1), with any parameters.
  const type = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

function hasBody(ctx: Context): boolean {
  const te = ctx.get('transfer-encoding');
  const len = ctx.get('content-length');
  return te !== '' || (len !== '' && len !== '0');
}

async function readBody(ctx: Context, max: number): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readRawBody(ctx.req, max);
  } catch (err) {
    // Stop reading: the connection is closed after the 413 so the rest of the upload is not read.
    if (err instanceof AppError && err.status === 413) ctx.set('Connection', 'close');
    throw err;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new AppError(400, 'INVALID_JSON', 'Request body is not valid UTF-8');
  }
}

/**
 * Koa middleware for Flowgate's JSON endpoints. Sets `ctx.request.body` to the parsed JSON:
 * - no body (Content-Length 0 or absent, no Transfer-Encoding) → `{}`;
 * - a body whose Content-Type is not `application/json` (or `+json`) → 415 UNSUPPORTED_MEDIA_TYPE;
 * - Content-Encoding other than identity → 415 (compressed bodies could bypass the size limit);
 * - more than `limit` bytes → 413 PAYLOAD_TOO_LARGE (checked on Content-Length and while reading);
 * - invalid JSON, or a top-level value that is not an object or array → 400 INVALID_JSON.
 * Errors are AppErrors, so they answer in the one JSON error shape. GET/HEAD/DELETE without a body
 * pass through untouched (`ctx.request.body` stays undefined for them).
 */
export function jsonBody(opts: JsonBodyOptions) {
  const max = parseByteLimit(opts.limit);
  return async function jsonBodyMiddleware(ctx: Context, next: Next): Promise<void> {
    if (ctx.request.body !== undefined) return next();
    if (!hasBody(ctx)) {
      if (ctx.method === 'POST' || ctx.method === 'PUT' || ctx.method === 'PATCH') ctx.request.body = {};
      return next();
    }
    if (!isJsonType(ctx)) {
      throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Request body must be JSON (Content-Type: application/json)');
    }
    const encoding = ctx.get('content-encoding').trim().toLowerCase();
    if (encoding !== '' && encoding !== 'identity') {
      throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding}" is not supported`);
    }
    const text = await readBody(ctx, max);
    let value: unknown;
    try {
      value = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      throw new AppError(400, 'INVALID_JSON', 'Request body is not valid JSON');
    }
    if (value === null || typeof value !== 'object') {
      throw new AppError(400, 'INVALID_JSON', 'Request body must be a JSON object or array');
    }
    if (tooDeep(value, MAX_JSON_DEPTH)) throw new AppError(400, 'INVALID_JSON', `Request body nests deeper than ${MAX_JSON_DEPTH} levels`);
    const unsafe = findUnsafeText(value);
    if (unsafe !== undefined) throw unsafeTextError(unsafe);
    ctx.request.body = value;
    await next();
  };
}

/**
 * The form body reader of Flowgate's pages (sign-in, consent, dashboard forms): urlencoded only, up
 * to `limit`, and refused with a 400 AppError (rendered as the page's error) when a field or its name
 * holds text no field accepts, or nests deeper than any form of ours.
 */
export function formBody(limit: string) {
  const parse = bodyParser({ enableTypes: ['form'], formLimit: limit });
  return async function formBodyMiddleware(ctx: Context, next: Next): Promise<void> {
    await parse(ctx, async () => {
      const body = ctx.request.body;
      if (tooDeep(body, 4)) throw new AppError(400, 'BAD_REQUEST', 'The form could not be read.');
      const unsafe = findUnsafeText(body);
      if (unsafe !== undefined) throw unsafeTextError(`form.${unsafe}`);
      await next();
    });
  };
}

/**
 * Validates a value (usually `ctx.request.body` or `ctx.query`) with a zod schema at the edge.
 * Failure → 400 VALIDATION_ERROR with `details.issues` = [{ path, message }] (never the input itself).
 */
export function parseInput<T>(schema: ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const first = issues[0];
  const message = first ? (first.path ? `${first.path}: ${first.message}` : first.message) : 'Invalid input';
  throw new AppError(400, 'VALIDATION_ERROR', message, { issues });
}
