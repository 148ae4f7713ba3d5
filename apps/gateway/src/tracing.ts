import type { IncomingMessage, ServerResponse } from 'node:http';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { Tracer, type TraceSpan } from '@x/resilience';

/** The OpenTelemetry SDK the gateway (or one of its backends) started from the environment. */
export interface Tracing {
  /** `http/protobuf` or `http/json`. */
  readonly protocol: string;
  /** Flushes the spans not yet exported and stops exporting. */
  shutdown(): Promise<void>;
}

const PROTOCOLS = ['http/protobuf', 'http/json'];

/**
 * Starts the OpenTelemetry SDK from the standard variables, or returns undefined (exporting
 * nothing, loading no SDK state) when neither `OTEL_EXPORTER_OTLP_ENDPOINT` nor
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or when `OTEL_SDK_DISABLED=true` /
 * `OTEL_TRACES_EXPORTER=none`. `OTEL_SERVICE_NAME` names the service (default `serviceName`);
 * `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (or `OTEL_EXPORTER_OTLP_PROTOCOL`) picks `http/protobuf`
 * (default) or `http/json`; the official exporters read the endpoint, headers and timeout
 * variables themselves. Spans are batched; W3C trace context is the propagator.
 */
export function startTracing(
  env: NodeJS.ProcessEnv,
  serviceName: string,
  warn: (message: string) => void = message => process.stderr.write(`${message}\n`),
): Tracing | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return undefined;
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return undefined;
  if (env.OTEL_TRACES_EXPORTER?.split(',').some(e => e.trim() === 'none')) return undefined;
  let protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf';
  if (!PROTOCOLS.includes(protocol)) {
    warn(
      `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: expected one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(protocol)}; using http/protobuf`,
    );
    protocol = 'http/protobuf';
  }
  const exporter = protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || serviceName }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500, maxExportBatchSize: 512 }),
    ],
  });
  provider.register();
  return { protocol, shutdown: () => provider.shutdown() };
}

const tracer = new Tracer('@x/gateway', 'x:gateway:request');

/**
 * A server span for one incoming request (HTTP semantic conventions), continuing the caller's
 * `traceparent`; undefined when nobody traces. It ends when the response closes, with
 * `http.response.status_code`, failed for a 5xx or a response that never finished.
 */
export function serverSpan(
  req: IncomingMessage,
  res: ServerResponse,
  route: string,
  path: string,
): TraceSpan | undefined {
  const method = req.method ?? 'GET';
  const span = tracer.start(`${method} ${route}`, {
    kind: 'server',
    parent: req.headers,
    attributes: {
      'http.request.method': method,
      'http.route': route,
      'url.path': path,
      'url.scheme': 'http',
      'network.peer.address': req.socket.remoteAddress,
      'user_agent.original': req.headers['user-agent'],
    },
  });
  if (span === undefined) return undefined;
  res.once('close', () => {
    const status = res.statusCode;
    span.setAttributes({ 'http.response.status_code': status });
    if (!res.writableFinished) span.end(new Error('the client went away before the answer'));
    else if (status >= 500)
      span.end(Object.assign(new Error(`HTTP ${status}`), { code: String(status) }));
    else span.end();
  });
  return span;
}
