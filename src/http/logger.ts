import { pino, type Logger, type DestinationStream } from 'pino';
import { safeError } from './safe-error.js';

/**
 * Paths pino removes wherever they appear. Secrets travel in headers, cookies, query strings and
 * bodies; the request serializer below never logs raw URLs with their query strings.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.client_secret',
  '*.secret',
  '*.token',
  '*.key',
  '*.api_key',
  '*.access_token',
  '*.refresh_token',
];

/**
 * Bytes of log lines kept in memory before one write to stdout. Measured (docs/operations.md, "Logs"):
 * a synchronous write per request line cost introspection a third of its throughput at LOG_LEVEL=info;
 * one write per 8 kB costs a few per cent. The buffer is also written every FLUSH_EVERY_MS, on
 * shutdown, on a fatal error and at process exit; a process killed with SIGKILL (or by the kernel for
 * memory) loses what is still in it: at most LOG_BUFFER_BYTES or FLUSH_EVERY_MS of lines.
 */
export const LOG_BUFFER_BYTES = 8 * 1024;
export const FLUSH_EVERY_MS = 1000;

/** stdout, asynchronous and buffered (pino's SonicBoom), flushed as described above. */
export function bufferedStdout(): DestinationStream & { flush(): void; flushSync(): void } {
  const dest = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  setInterval(() => {
    try {
      dest.flush();
    } catch {
      // flush() throws while a previous write is still pending; the next tick writes it.
    }
  }, FLUSH_EVERY_MS).unref();
  return dest;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'flowgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Library errors carry what they were called with (ioredis: command arguments such as token
      // keys; TypeORM/pg: SQL parameters and value-echoing details): safeError keeps what explains
      // the failure and drops the rest, wherever an error is logged under err or error.
      serializers: { err: safeError, error: safeError },
    },
    destination ?? bufferedStdout(),
  );
}

import { redactUrl } from './redact-url.js';

export { redactUrl as safeUrl };

/** One request line: the URL as requested (redacted when written), the id validated, the rest fixed. */
export interface RequestLine {
  reqId?: string;
  method?: string;
  url: string;
  status: number;
  ms: number;
  ip?: string;
}

const requestLoggers = new WeakMap<Logger, Logger>();

/**
 * Writes the request line, one per request at LOG_LEVEL=info. It goes to the same buffered stream
 * as every other line, through a logger without redaction paths: redaction walks each logged object
 * for the paths above (measured: a tenth of the introspection's cost at info), and this line's
 * fields are fixed and hold nothing secret, so there is nothing for it to find.
 */
export function logRequest(logger: Logger, startedAt: number, request: Omit<RequestLine, 'ms'>): void {
  if (!logger.isLevelEnabled('info')) return;
  let lines = requestLoggers.get(logger);
  if (!lines) {
    // The same fields every line of this logger carries (service, and the worker for WORKERS > 1).
    lines = pino({ level: 'info', base: logger.bindings() }, streamOf(logger) as DestinationStream);
    requestLoggers.set(logger, lines);
  }
  // The URL is redacted here, where the redacting logger is not used, so no caller can forget it.
  lines.info({ ...request, url: redactUrl(request.url), ms: Math.round((performance.now() - startedAt) * 10) / 10 }, 'request');
}

/** The destination a logger writes to (pino keeps it under a symbol). */
function streamOf(logger: Logger): unknown {
  return (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
}

/** Writes what the logger buffered, synchronously (before exit, after a fatal error). */
export function flushLogsSync(logger: Logger): void {
  const stream = streamOf(logger) as { flushSync?: () => void } | undefined;
  try {
    stream?.flushSync?.();
  } catch {
    // Nothing more can be done for a log that cannot be written.
  }
}
