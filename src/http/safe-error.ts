/**
 * An error as it may be written to a log: what explains the failure (type, message, code, stack,
 * the constraint or command name) and nothing a library attached from its input. Allow-listed rather
 * than deny-listed, because libraries keep adding fields:
 * - ioredis puts the command's arguments on ReplyError and AbortError (`command.args`): Redis keys
 *   name access tokens, grants and sessions;
 * - TypeORM's QueryFailedError carries the statement's `parameters` (key hashes, sealed secrets) and
 *   copies the driver error's fields; pg's `detail` echoes row values ("Key (key_hash)=(…) already
 *   exists") and some messages quote the offending input (`invalid input syntax for type uuid: "…"`).
 */
const KEEP = ['name', 'code', 'errno', 'syscall', 'status', 'statusCode', 'severity', 'constraint', 'table', 'column', 'schema', 'routine', 'error', 'error_description'] as const;
const MAX_DEPTH = 3;

/** Quoted input after a colon (`…: "value"`), as PostgreSQL and Lua errors print it. */
function scrub(text: string): string {
  return text.replace(/(:\s*)"(?:[^"\\\n]|\\.)*"/g, '$1"[redacted]"');
}

type Plain = Record<string, unknown>;

export function safeError(err: unknown, depth = 0): unknown {
  if (err === null || typeof err !== 'object') return typeof err === 'string' ? scrub(err) : err;
  const e = err as Plain;
  const out: Plain = { type: (err as object).constructor?.name ?? 'Object' };
  if (typeof e.message === 'string') out.message = scrub(e.message);
  for (const k of KEEP) if (e[k] !== undefined && (typeof e[k] !== 'object' || e[k] === null)) out[k] = typeof e[k] === 'string' ? scrub(e[k] as string) : e[k];
  if (typeof e.stack === 'string') out.stack = scrub(e.stack);
  // The SQL text names tables and placeholders ($1), never the values; long statements are cut.
  if (typeof e.query === 'string') out.query = e.query.length > 500 ? `${e.query.slice(0, 500)}…` : e.query;
  // ioredis: which command failed, never its arguments.
  const command = e.command as Plain | string | undefined;
  if (typeof command === 'string') out.command = command;
  else if (command && typeof command.name === 'string') out.command = command.name;
  if (depth < MAX_DEPTH) {
    if (e.cause !== undefined) out.cause = safeError(e.cause, depth + 1);
    if (e.driverError !== undefined && e.driverError !== err) out.driverError = safeError(e.driverError, depth + 1);
    if (Array.isArray(e.errors)) out.errors = e.errors.slice(0, 5).map((x) => safeError(x, depth + 1));
    if (Array.isArray(e.previousErrors)) out.previousErrors = e.previousErrors.slice(0, 5).map((x) => safeError(x, depth + 1));
  }
  return out;
}
