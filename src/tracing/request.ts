import type { IncomingMessage, ServerResponse } from 'node:http';
import type * as Api from '@opentelemetry/api';
import { routeTemplate } from '../metrics/routes.js';

let api: typeof Api | undefined;
let tracer: Api.Tracer | undefined;

export function enableRequestTracing(a: typeof Api, t: Api.Tracer): void {
  api = a;
  tracer = t;
}

/** Runs `next` inside a server span for the request when tracing is on; otherwise just runs it. */
export function traceRequest(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  if (!tracer || !api) return next();
  const a = api;
  const route = routeTemplate(req.url);
  const parent = a.propagation.extract(a.context.active(), req.headers);
  const span = tracer.startSpan(
    `${req.method} ${route}`,
    { kind: a.SpanKind.SERVER, attributes: { 'http.request.method': req.method ?? 'GET', 'http.route': route } },
    parent,
  );
  res.once('close', () => {
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: a.SpanStatusCode.ERROR });
    span.end();
  });
  a.context.with(a.trace.setSpan(parent, span), next);
}
