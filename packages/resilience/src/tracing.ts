import { createRequire } from 'node:module';
import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel';
import type * as OtelApi from '@opentelemetry/api';

/** Attribute values a span accepts (undefined values are skipped). */
export type TraceAttributes = Record<string, string | number | boolean | undefined>;

/** Headers a trace context is read from or written to (`traceparent`, `tracestate`). */
export type TraceCarrier = Record<string, string | string[] | undefined>;

/** What a `tracingChannel` subscriber receives for one traced operation. */
export interface TraceMessage {
  /** The span name, e.g. `GET` or `faultTolerant search`. */
  readonly name: string;
  /** Attributes known when it started (OpenTelemetry semantic-convention names). */
  readonly attributes: TraceAttributes;
  /** Events added while it ran (`retry`, `hedge`, `fallback`, `circuit.reject`, …). */
  readonly events: { name: string; attributes?: TraceAttributes }[];
  /** The error it ended with, if any. */
  error?: unknown;
}

/** Options of {@link Tracer.start}. */
export interface TraceStartOptions {
  /** OpenTelemetry span kind. Default `internal`. */
  readonly kind?: 'internal' | 'client' | 'server' | 'producer' | 'consumer';
  readonly attributes?: TraceAttributes;
  /**
   * The parent: a span, or incoming headers to continue a remote trace from (W3C `traceparent`),
   * used only when no span is active in this process (an active span is the closer parent).
   * Default: the active context.
   */
  readonly parent?: TraceCarrier | TraceSpan;
}

const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const KINDS = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 } as const;

let api: typeof OtelApi | null | undefined;

/** `require` in both builds (tsup turns `import.meta.url` into this file's URL in CommonJS). */
function load(id: string): unknown {
  return createRequire(import.meta.url)(id);
}

/**
 * `@opentelemetry/api`, loaded only once a tracer provider is registered globally (an SDK
 * started). Until then nothing is loaded, and after a failed load (the optional peer is not
 * installed) tracing stays off.
 */
function otel(): typeof OtelApi | undefined {
  const registered = (globalThis as Record<symbol, { trace?: unknown } | undefined>)[OTEL_GLOBAL];
  if (registered?.trace === undefined) return undefined;
  if (api === undefined) {
    try {
      api = load('@opentelemetry/api') as typeof OtelApi;
    } catch {
      api = null;
    }
  }
  return api ?? undefined;
}

/** The `error.type` of a failure: its `code` when it has a string one, else its name. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : ((error as Error | null)?.name ?? typeof error);
}

function withoutUndefined(attributes: TraceAttributes | undefined): OtelApi.Attributes | undefined {
  if (attributes === undefined) return undefined;
  const out: OtelApi.Attributes = {};
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function header(carrier: TraceCarrier, name: string): string | undefined {
  const value = carrier[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The parent context of a new span: a span, incoming headers, or the active context. */
function parentContext(o: typeof OtelApi, parent: TraceStartOptions['parent']): OtelApi.Context {
  const active = o.context.active();
  if (parent === undefined) return active;
  if (parent instanceof TraceSpan) return (parent.context as OtelApi.Context | undefined) ?? active;
  // a span active in this process (the edge's, when a handler is mounted under it) is the closer
  // parent: incoming headers continue a trace only where nothing in this process traces the request
  if (o.trace.getSpan(active) !== undefined) return active;
  const extracted = o.propagation.extract(active, parent, {
    get: (carrier, key) => header(carrier, key),
    keys: carrier => Object.keys(carrier),
  });
  if (o.trace.getSpanContext(extracted) !== undefined) return extracted;
  // No propagator registered: read W3C trace context ourselves.
  const match = TRACEPARENT.exec(header(parent, 'traceparent') ?? '');
  if (match === null || match[1] === 'ff') return active;
  const state = header(parent, 'tracestate');
  return o.trace.setSpanContext(active, {
    traceId: match[2]!,
    spanId: match[3]!,
    traceFlags: parseInt(match[4]!, 16),
    isRemote: true,
    ...(state ? { traceState: o.createTraceState(state) } : {}),
  });
}

/**
 * One traced operation: an OpenTelemetry span when a tracer is registered, and the start/end
 * messages of the tracer's `tracingChannel`. Made by {@link Tracer.start}.
 */
export class TraceSpan {
  private readonly span: OtelApi.Span | undefined;

  /** @internal `span` and `context` are `@opentelemetry/api` objects, kept out of the public types. */
  constructor(
    private readonly channel: TracingChannel<TraceMessage> | undefined,
    readonly message: TraceMessage,
    span: unknown,
    /** @internal the OpenTelemetry context holding this span (an `@opentelemetry/api` Context). */
    readonly context: unknown,
  ) {
    this.span = span as OtelApi.Span | undefined;
  }

  /** Adds an event (a retry, a hedge, a breaker rejection). */
  event(name: string, attributes?: TraceAttributes): void {
    this.message.events.push(attributes ? { name, attributes } : { name });
    this.span?.addEvent(name, withoutUndefined(attributes));
  }

  /** Sets attributes learnt while running (the chosen host, the status code). */
  setAttributes(attributes: TraceAttributes): void {
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined) continue;
      this.message.attributes[key] = value;
      this.span?.setAttribute(key, value);
    }
  }

  /** Ends the span; an error marks it failed (`error.type` = the error's code or name). */
  end(error?: unknown): void {
    const { span, channel, message } = this;
    if (error !== undefined) {
      message.error = error;
      channel?.error.publish(message);
      if (span) {
        span.setAttribute('error.type', errorType(error));
        if (error instanceof Error) span.recordException(error);
        span.setStatus({
          code: 2,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    }
    channel?.asyncEnd.publish(message);
    span?.end();
  }

  /** Writes `traceparent` (and `tracestate`) for this span into outgoing headers. */
  inject(carrier: Record<string, string>): void {
    const o = api;
    if (!o || !this.span || !this.context) return;
    o.propagation.inject(this.context as OtelApi.Context, carrier, {
      set: (c, key, value) => {
        c[key] = value;
      },
    });
    if (carrier.traceparent === undefined) {
      const { traceId, spanId, traceFlags, traceState } = this.span.spanContext();
      carrier.traceparent = `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
      const state = traceState?.serialize();
      if (state) carrier.tracestate = state;
    }
  }

  /** The W3C `traceparent` of this span, if it is an OpenTelemetry span. */
  get traceparent(): string | undefined {
    const carrier: Record<string, string> = {};
    this.inject(carrier);
    return carrier.traceparent;
  }

  /** Runs `fn` with this span active, so spans started inside become its children. */
  run<T>(fn: () => T): T {
    const o = api;
    return o && this.context ? o.context.with(this.context as OtelApi.Context, fn) : fn();
  }
}

/**
 * Where a package's spans come from: `new Tracer('@x/rest-client', 'x:rest-client:request')`.
 * {@link start} returns undefined, having loaded and allocated nothing, unless an OpenTelemetry
 * tracer provider is registered or the `node:diagnostics_channel` tracing channel has subscribers.
 * Hot paths test {@link enabled} first: it notices a tracer provider registered after traffic
 * began within 64 calls, and channel subscribers at once.
 */
export class Tracer {
  /** The channel APM tools subscribe to (`start`, `asyncEnd`, `error`). */
  readonly channel: TracingChannel<TraceMessage>;
  private tracer: OtelApi.Tracer | undefined;
  private provider: unknown;
  /** Calls since the OpenTelemetry global was last seen unregistered (0: look it up). */
  private off = 0;

  constructor(
    /** Instrumentation scope name (the package). */
    readonly scope: string,
    /** `node:diagnostics_channel` tracing channel name. */
    readonly channelName: string,
  ) {
    this.channel = tracingChannel<TraceMessage>(channelName);
  }

  /** True when a span started now would be recorded somewhere. */
  get enabled(): boolean {
    if (this.channel.hasSubscribers) return true;
    // Looking the OpenTelemetry global up costs about 20 ns, as much as the rest of this check:
    // while no tracer provider is registered, look again only every 64th call.
    if (this.off > 0) {
      this.off = (this.off + 1) & 63;
      return false;
    }
    if (otel() !== undefined) return true;
    this.off = 1;
    return false;
  }

  /** Starts a span, or returns undefined when nobody listens. */
  start(name: string, options: TraceStartOptions = {}): TraceSpan | undefined {
    const o = otel();
    const listened = this.channel.hasSubscribers;
    if (o === undefined && !listened) return undefined;
    const message: TraceMessage = {
      name,
      attributes: { ...options.attributes },
      events: [],
    };
    let span: OtelApi.Span | undefined;
    let context: OtelApi.Context | undefined;
    if (o !== undefined) {
      const provider = o.trace.getTracerProvider();
      if (this.tracer === undefined || this.provider !== provider) {
        this.provider = provider;
        this.tracer = o.trace.getTracer(this.scope);
      }
      const parent = parentContext(o, options.parent);
      span = this.tracer.startSpan(
        name,
        {
          kind: KINDS[options.kind ?? 'internal'],
          attributes: withoutUndefined(options.attributes),
        },
        parent,
      );
      context = o.trace.setSpan(parent, span);
    }
    const channel = listened ? this.channel : undefined;
    channel?.start.publish(message);
    return new TraceSpan(channel, message, span, context);
  }
}
