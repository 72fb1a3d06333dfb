import type { Context } from 'koa';

/** Runs `settle(status)` once the response has gone out (status 0: the connection closed before it did). */
export function afterResponse(ctx: Context, settle: (status: number) => Promise<void>): void {
  ctx.res.once('close', () => {
    void settle(ctx.res.writableFinished ? ctx.res.statusCode : 0).catch(() => {});
  });
}
