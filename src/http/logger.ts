import { pino, type Logger, type DestinationStream } from 'pino';

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'flowgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

export { redactUrl as safeUrl } from './redact-url.js';
