import type { Context, Next } from 'koa';
import { errorBody, FlowgateError } from '@flowgate/sdk/errors';

export { errorBody };

/**
 * Flowgate's one JSON error: `{"success": false, "error": {"code", "message", "details"}}`. The class
 * is the SDK's, so that Flowgate's API and every workflow service built on the SDK throw, answer and
 * recognise the same error.
 */
export const AppError = FlowgateError;
export type AppError = FlowgateError;

/**
 * One input field at fault: `path` is the field's dotted path in the request as the API names it
 * (`redirect_uris.0`, `team_id`), '' for the request as a whole.
 */
export interface ValidationIssue {
  path: string;
  message: string;
}

/** An issue in words that name its field (once). */
function issueMessage(i: ValidationIssue): string {
  const field = i.path.split('.')[0];
  return !i.path || i.message.includes(field) ? i.message : `${i.path}: ${i.message}`;
}

/** The one shape of every error about specific input fields, whatever the status: `details.issues`. */
export function issuesDetails(issues: ValidationIssue[]): { issues: ValidationIssue[] } {
  return { issues };
}

export const errors = {
  badRequest: (message: string, details?: Record<string, unknown>) => new AppError(400, 'BAD_REQUEST', message, details),
  /** 400 VALIDATION_ERROR naming the field at fault (`details.issues`), or the whole request when `field` is absent. */
  validation: (message: string, field?: string) => new AppError(400, 'VALIDATION_ERROR', message, issuesDetails([{ path: field ?? '', message }])),
  /** 400 VALIDATION_ERROR with every issue found (the edge guard reports them all). */
  invalid: (issues: ValidationIssue[]) => new AppError(400, 'VALIDATION_ERROR', issues[0] ? issueMessage(issues[0]) : 'Invalid input', issuesDetails(issues)),
  unauthorized: (code: string, message: string, details?: Record<string, unknown>) => new AppError(401, code, message, details),
  forbidden: (code: string, message: string, details?: Record<string, unknown>) => new AppError(403, code, message, details),
  notFound: (message = 'Not found') => new AppError(404, 'NOT_FOUND', message),
  conflict: (message: string, field?: string) => new AppError(409, 'CONFLICT', message, field === undefined ? undefined : issuesDetails([{ path: field, message }])),
};


export function sendError(ctx: Context, err: AppError): void {
  ctx.status = err.status;
  if (err.headers) ctx.set(err.headers);
  ctx.body = errorBody(err.code, err.message, err.details);
}

/**
 * Turns thrown errors into the one JSON shape. Unknown errors become a 500 without their message
 * (messages may carry input, and input may carry secrets).
 */
export async function jsonErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    if (err instanceof AppError) return sendError(ctx, err);
    const e = err as { status?: number; expose?: boolean; type?: string; message?: string };
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      const code = e.status === 413 ? 'PAYLOAD_TOO_LARGE' : e.status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
      const message =
        e.type === 'entity.parse.failed' ? 'Request body is not valid JSON' : e.expose && e.message ? e.message : 'Bad request';
      return sendError(ctx, new AppError(e.status, code, message));
    }
    ctx.app.emit('error', err, ctx);
    sendError(ctx, new AppError(500, 'INTERNAL_ERROR', 'Internal server error'));
  }
}
