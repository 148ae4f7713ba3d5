import { SpanKind, type HrTime } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { boundedAttributes } from './spanAttributes.js';
import type { TraceStore } from './traceStore.js';

/** Epoch milliseconds of an OpenTelemetry time. */
function epochMs([seconds, nanos]: HrTime): number {
  return seconds * 1_000 + nanos / 1e6;
}

/**
 * Hands every span the gateway's own SDK ends to the {@link TraceStore} (no export, no copy
 * beyond the bounded attributes). A server span without a parent in this process is the request's
 * entry span: its end lists the trace under its name (`GET /api/search`).
 */
export class TraceStoreProcessor implements SpanProcessor {
  /** Spans of this process not ended yet: a server span under one of them is not an entry. */
  private readonly open = new Set<string>();

  constructor(private readonly store: TraceStore) {}

  onStart(span: Span): void {
    this.open.add(span.spanContext().spanId);
  }

  onEnd(span: ReadableSpan): void {
    const context = span.spanContext();
    this.open.delete(context.spanId);
    const parent = span.parentSpanContext;
    const resource = span.resource.attributes;
    this.store.add(
      {
        traceId: context.traceId,
        spanId: context.spanId,
        parentSpanId: parent?.spanId ?? '',
        name: span.name,
        kind: span.kind + 1, // the API's enum starts at INTERNAL = 0, OTLP's at 1
        service: String(resource['service.name'] ?? ''),
        instance:
          resource['service.instance.id'] === undefined
            ? undefined
            : String(resource['service.instance.id']),
        startMs: epochMs(span.startTime),
        endMs: epochMs(span.endTime),
        statusCode: span.status.code,
        statusMessage: span.status.message,
        attributes: boundedAttributes(Object.entries(span.attributes)),
        events: span.events.slice(0, 8).map(e => ({
          name: e.name,
          atMs: epochMs(e.time),
          attributes: boundedAttributes(Object.entries(e.attributes ?? {})),
        })),
      },
      // the dispatcher's loopback front door continues the orders client's span over HTTP: its
      // server span has a remote parent that is still open here, so it is not the entry
      span.kind === SpanKind.SERVER &&
        (parent === undefined || (parent.isRemote === true && !this.open.has(parent.spanId))),
    );
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
