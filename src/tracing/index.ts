/**
 * OpenTelemetry traces, off unless an OTLP/HTTP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). When off, none of the SDK is loaded. When on:
 * - one server span per HTTP request, named by its route template (`POST /token`,
 *   `POST /token/introspection`), continuing an incoming W3C `traceparent`;
 * - PostgreSQL statements (pg instrumentation: the SQL text with its placeholders, never parameters)
 *   and Redis commands (ioredis instrumentation: the command name only, never keys or arguments:
 *   keys name tokens) as child spans;
 * - exported in batches (BatchSpanProcessor), so a slow collector never delays a request.
 * Must start before the server's modules are imported: the instrumentations hook module loading.
 */
import type { Config } from '../config/schema.js';
import { packageVersion } from '../config/load.js';
import { enableRequestTracing } from './request.js';

export interface Tracing {
  shutdown(): Promise<void>;
}

export async function startTracing(config: Config): Promise<Tracing | undefined> {
  const { otlpEndpoint, serviceName, sampleRatio } = config.tracing;
  if (!otlpEndpoint) return undefined;
  const { register } = await import('node:module');
  // import-in-the-middle: lets the instrumentations see modules loaded through `import` as well.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const api = await import('@opentelemetry/api');
  const { NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
  const { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } = await import('@opentelemetry/sdk-trace-base');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const { registerInstrumentations } = await import('@opentelemetry/instrumentation');
  const { PgInstrumentation } = await import('@opentelemetry/instrumentation-pg');
  const { IORedisInstrumentation } = await import('@opentelemetry/instrumentation-ioredis');
  const version = packageVersion();

  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.version': version }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpEndpoint }))],
  });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new PgInstrumentation({ enhancedDatabaseReporting: false, requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
    ],
  });
  enableRequestTracing(api, api.trace.getTracer('flowgate', version));
  return { shutdown: () => provider.shutdown() };
}
