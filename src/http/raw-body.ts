import type { IncomingMessage } from 'node:http';
import { AppError } from './errors.js';

/** The one 413 for bodies over their limit (in Flowgate's JSON shape; OAuth endpoints map it). */
export function payloadTooLarge(limit: number): AppError {
  return new AppError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds the ${limit}-byte limit`, { limitBytes: limit });
}

/** Reads a request body up to `limit` bytes; larger bodies fail with 413 before buffering more. */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  // Events rather than `for await`: the async iterator costs more than the body on small requests.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(payloadTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => onError(new AppError(400, 'BAD_REQUEST', 'Request aborted'));
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
