import type { IncomingMessage } from 'node:http';
import { AppError } from './errors.js';

/** Reads a request body up to `limit` bytes; larger bodies fail with 413 before buffering more. */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new AppError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new AppError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
