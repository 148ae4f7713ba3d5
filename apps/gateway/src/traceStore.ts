/** An attribute value as the dashboard shows it. */
export type SpanValue = string | number | boolean | readonly (string | number | boolean)[];

/** One finished span, from the gateway itself or from one of its instances (OTLP). */
export interface StoredSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a span without a parent. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  /** The resource's `service.name` (`x-gateway`, `x-catalog`…). */
  readonly service: string;
  /** The resource's `service.instance.id` (`catalog.v1.2`), when set. */
  readonly instance: string | undefined;
  /** Epoch milliseconds (fractional). */
  readonly startMs: number;
  readonly endMs: number;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
  readonly statusMessage: string | undefined;
  readonly attributes: Readonly<Record<string, SpanValue>>;
  readonly events: readonly {
    readonly name: string;
    readonly atMs: number;
    readonly attributes: Readonly<Record<string, SpanValue>>;
  }[];
}

/** Bounds of a {@link TraceStore} (`tracing` in `gateway.config.yaml`). */
export interface TraceStoreLimits {
  /** Traces kept per endpoint (the newest). */
  readonly dashboardTraces: number;
  /** Spans kept per trace; more are counted as dropped. */
  readonly maxSpansPerTrace: number;
  /** Spans kept in all; the oldest traces go first beyond it. */
  readonly maxSpans: number;
  /** Traces whose entry span has not ended yet (in flight, or spans of an unknown trace). */
  readonly maxPending?: number;
}

/** One trace as the dashboard lists it. */
export interface TraceSummary {
  readonly traceId: string;
  /** The entry span's name: `GET /api/search`. */
  readonly endpoint: string;
  /** Epoch milliseconds of the entry span's start. */
  readonly startedAt: number;
  readonly durationMs: number;
  /** `http.response.status_code` of the entry span (0 when unknown). */
  readonly status: number;
  /** True when any span of the trace failed. */
  readonly error: boolean;
  readonly spans: number;
  readonly droppedSpans: number;
  readonly services: readonly string[];
}

/** A span placed on the waterfall of its trace. */
export interface WaterfallSpan extends StoredSpan {
  /** Milliseconds from the trace's first span start. */
  readonly offsetMs: number;
  readonly durationMs: number;
  /** Nesting under the spans of this trace (0: no parent in the trace). */
  readonly depth: number;
}

/** A whole trace, its spans in waterfall order (each after its parent, siblings by start). */
export interface TraceDetail extends TraceSummary {
  readonly spans: number;
  readonly waterfall: readonly WaterfallSpan[];
}

interface Trace {
  readonly traceId: string;
  readonly spans: StoredSpan[];
  /** The gateway's entry span (server span without a local parent), once it ended. */
  entry: StoredSpan | undefined;
  dropped: number;
}

/**
 * The last traces of each endpoint of the gateway, for the dashboard's waterfall. Spans come
 * from the gateway's own SDK (`TraceStoreProcessor`) and from its instances (OTLP posted to the
 * gateway); they are grouped by trace id, whatever order they arrive in: an instance exports in
 * batches, after the gateway's entry span ended, and its spans join that trace. A trace is listed
 * under its entry span's name once that span ended; the oldest of an endpoint goes when it has
 * more than `dashboardTraces`.
 *
 * Memory is bounded: at most `maxSpansPerTrace` spans per trace (the rest counted as dropped),
 * `maxSpans` spans in all and `maxPending` traces without an ended entry span; beyond a bound the
 * least recently completed (or oldest pending) trace is evicted.
 */
export class TraceStore {
  readonly limits: Required<TraceStoreLimits>;
  /** Oldest first: pending traces by arrival, complete ones by completion. */
  private readonly traces = new Map<string, Trace>();
  /** Trace ids per endpoint, oldest first. */
  private readonly byEndpoint = new Map<string, string[]>();
  private spanCount = 0;
  private pendingCount = 0;
  private evicted = 0;

  constructor(limits: TraceStoreLimits) {
    this.limits = {
      maxPending: Math.max(64, limits.dashboardTraces * 8),
      ...limits,
    };
  }

  /**
   * Keeps `span`; `entry` marks the gateway's entry span of a request (a server span without a
   * local parent): its end lists the trace under its endpoint.
   */
  add(span: StoredSpan, entry = false): void {
    let trace = this.traces.get(span.traceId);
    if (trace === undefined) {
      trace = { traceId: span.traceId, spans: [], entry: undefined, dropped: 0 };
      this.traces.set(span.traceId, trace);
      this.pendingCount++;
    }
    if (trace.spans.length >= this.limits.maxSpansPerTrace) trace.dropped++;
    else {
      trace.spans.push(span);
      this.spanCount++;
    }
    if (entry && trace.entry === undefined) this.complete(trace, span);
    this.enforce(trace);
  }

  private complete(trace: Trace, entry: StoredSpan): void {
    trace.entry = entry;
    this.pendingCount--;
    // newest completed last in the eviction order
    this.traces.delete(trace.traceId);
    this.traces.set(trace.traceId, trace);
    let list = this.byEndpoint.get(entry.name);
    if (list === undefined) this.byEndpoint.set(entry.name, (list = []));
    list.push(trace.traceId);
    while (list.length > this.limits.dashboardTraces) this.remove(this.traces.get(list[0]!)!);
  }

  /** Evicts the oldest traces (never `keep`, the one just added to) until every bound holds. */
  private enforce(keep: Trace): void {
    while (this.pendingCount > this.limits.maxPending) {
      const oldest = this.oldest(t => t.entry === undefined && t !== keep);
      if (oldest === undefined) break;
      this.remove(oldest);
    }
    while (this.spanCount > this.limits.maxSpans) {
      const oldest = this.oldest(t => t !== keep);
      if (oldest === undefined) break;
      this.remove(oldest);
    }
  }

  private oldest(match: (t: Trace) => boolean): Trace | undefined {
    for (const t of this.traces.values()) if (match(t)) return t;
    return undefined;
  }

  private remove(trace: Trace): void {
    this.traces.delete(trace.traceId);
    this.spanCount -= trace.spans.length;
    this.evicted++;
    if (trace.entry === undefined) {
      this.pendingCount--;
      return;
    }
    const list = this.byEndpoint.get(trace.entry.name)!;
    list.splice(list.indexOf(trace.traceId), 1);
    if (list.length === 0) this.byEndpoint.delete(trace.entry.name);
  }

  /** What the store holds now, against its limits. */
  stats(): { traces: number; pending: number; spans: number; endpoints: number; evicted: number } {
    return {
      traces: this.traces.size,
      pending: this.pendingCount,
      spans: this.spanCount,
      endpoints: this.byEndpoint.size,
      evicted: this.evicted,
    };
  }

  /** Every endpoint with its listed traces, newest first; endpoints by name. */
  list(): { endpoint: string; traces: TraceSummary[] }[] {
    return [...this.byEndpoint.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([endpoint, ids]) => ({
        endpoint,
        traces: ids.map(id => summary(this.traces.get(id)!)).reverse(),
      }));
  }

  /** One listed trace with its waterfall, or undefined when it is not (or no longer) kept. */
  get(traceId: string): TraceDetail | undefined {
    const trace = this.traces.get(traceId);
    if (trace?.entry === undefined) return undefined;
    return { ...summary(trace), waterfall: waterfall(trace.spans) };
  }
}

function summary(trace: Trace): TraceSummary {
  const entry = trace.entry!;
  return {
    traceId: trace.traceId,
    endpoint: entry.name,
    startedAt: entry.startMs,
    durationMs: round(entry.endMs - entry.startMs),
    status: Number(entry.attributes['http.response.status_code'] ?? 0),
    error: trace.spans.some(s => s.statusCode === 2),
    spans: trace.spans.length,
    droppedSpans: trace.dropped,
    services: [...new Set(trace.spans.map(s => s.service))],
  };
}

/** Spans in depth-first order under their parents (siblings by start time), with offsets. */
function waterfall(spans: readonly StoredSpan[]): WaterfallSpan[] {
  const ids = new Set(spans.map(s => s.spanId));
  const children = new Map<string, StoredSpan[]>();
  for (const span of spans) {
    const parent = ids.has(span.parentSpanId) ? span.parentSpanId : '';
    let list = children.get(parent);
    if (list === undefined) children.set(parent, (list = []));
    list.push(span);
  }
  for (const list of children.values()) list.sort((a, b) => a.startMs - b.startMs);
  const start = Math.min(...spans.map(s => s.startMs));
  const out: WaterfallSpan[] = [];
  const visit = (parent: string, depth: number): void => {
    for (const span of children.get(parent) ?? []) {
      out.push({
        ...span,
        offsetMs: round(span.startMs - start),
        durationMs: round(span.endMs - span.startMs),
        depth,
      });
      // a span id seen twice (a broken exporter) cannot loop: children of a visited id are taken once
      const next = children.get(span.spanId);
      if (next !== undefined && depth < 64) visit(span.spanId, depth + 1);
      children.delete(span.spanId);
    }
  };
  visit('', 0);
  return out;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
