import type { IncomingMessage, ServerResponse } from 'node:http';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { endSpanOnClose, Tracer, type TraceSpan } from '@x/resilience';

/** The OpenTelemetry SDK the gateway (or one of its backends) started. */
export interface Tracing {
  /** `http/protobuf` or `http/json` of the `OTEL_EXPORTER_OTLP_ENDPOINT` exporter; undefined without one. */
  readonly protocol: string | undefined;
  /** Flushes the spans not yet exported and stops exporting. */
  shutdown(): Promise<void>;
}

/** What the gateway adds to the SDK besides the user's exporter. */
export interface ExtraTracing {
  /** More span processors: the dashboard's trace store, the exporter to the gateway. */
  readonly spanProcessors?: readonly SpanProcessor[];
  /** Head sampling of new traces (a sampled caller's `traceparent` is followed); `OTEL_TRACES_SAMPLER` wins. */
  readonly sampleRatio?: number;
  /** More resource attributes (`service.instance.id`). */
  readonly resource?: Readonly<Record<string, string | number>>;
}

const PROTOCOLS = ['http/protobuf', 'http/json'];

/**
 * Starts the OpenTelemetry SDK when something takes its spans: an exporter from the standard
 * variables when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set
 * and `OTEL_TRACES_EXPORTER` is not `none`, and/or `extra.spanProcessors`. With neither, or
 * with `OTEL_SDK_DISABLED=true`, it returns undefined (no SDK state; the `@x/resilience` spans
 * cost nothing). `OTEL_SERVICE_NAME` names the service (default `serviceName`);
 * `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (or `OTEL_EXPORTER_OTLP_PROTOCOL`) picks `http/protobuf`
 * (default) or `http/json`; the official exporters read the endpoint, headers and timeout
 * variables themselves. Spans are batched; W3C trace context is the propagator.
 */
export function startTracing(
  env: NodeJS.ProcessEnv,
  serviceName: string,
  warn: (message: string) => void = message => process.stderr.write(`${message}\n`),
  extra: ExtraTracing = {},
): Tracing | undefined {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return undefined;
  const processors: SpanProcessor[] = [...(extra.spanProcessors ?? [])];
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const none = env.OTEL_TRACES_EXPORTER?.split(',').some(e => e.trim() === 'none');
  let protocol: string | undefined;
  if (endpoint && !none) {
    protocol =
      env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf';
    if (!PROTOCOLS.includes(protocol)) {
      warn(
        `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: expected one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(protocol)}; using http/protobuf`,
      );
      protocol = 'http/protobuf';
    }
    const exporter = protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter();
    processors.push(
      new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500, maxExportBatchSize: 512 }),
    );
  }
  if (processors.length === 0) return undefined;
  const sampler =
    extra.sampleRatio !== undefined && !env.OTEL_TRACES_SAMPLER
      ? new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(extra.sampleRatio) })
      : undefined;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': env.OTEL_SERVICE_NAME || serviceName,
      ...extra.resource,
    }),
    spanProcessors: processors,
    ...(sampler ? { sampler } : {}),
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
  if (span !== undefined) endSpanOnClose(span, res, 'the client went away before the answer');
  return span;
}
