import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

/** One span as an OTLP receiver got it, ids in lowercase hex. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  /** The resource's `service.name`. */
  readonly service: string;
  readonly attributes: Record<string, unknown>;
  readonly events: readonly {
    readonly name: string;
    readonly attributes: Record<string, unknown>;
  }[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

/** A small OTLP/HTTP trace receiver on loopback, for tests. */
export interface OtlpReceiver {
  /** The endpoint to give an exporter as `OTEL_EXPORTER_OTLP_ENDPOINT` (no `/v1/traces`). */
  readonly url: string;
  /** Every span received so far. */
  readonly spans: ReceivedSpan[];
  /** Export requests received, by protocol. */
  readonly requests: { json: number; protobuf: number };
  /** Resolves with the spans matching `predicate` once at least `count` arrived. */
  waitForSpans(
    predicate: (span: ReceivedSpan) => boolean,
    count?: number,
    timeoutMs?: number,
  ): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

// The part of opentelemetry/proto/trace/v1/trace.proto (and common, resource) a test reads.
const PROTO = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; repeated Event events = 11; Status status = 15;
}
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

let requestType: protobuf.Type | undefined;
/** The protobuf type of an OTLP trace export request (parsed once). */
export function otlpTraceRequestType(): protobuf.Type {
  return (requestType ??= protobuf
    .parse(PROTO, { keepCase: false })
    .root.lookupType('otlp.ExportTraceServiceRequest'));
}

type Json = Record<string, unknown>;

function hex(id: unknown): string {
  if (id === undefined || id === null) return '';
  if (typeof id === 'string') return id.toLowerCase(); // OTLP/JSON: hex already
  return Buffer.from(id as Uint8Array).toString('hex');
}

function anyValue(value: Json | undefined): unknown {
  if (!value) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('arrayValue' in value)
    return ((value.arrayValue as Json).values as Json[] | undefined)?.map(anyValue) ?? [];
  return undefined;
}

function attributes(list: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of (list as Json[] | undefined) ?? [])
    out[kv.key as string] = anyValue(kv.value as Json);
  return out;
}

/** Flattens an export request (decoded from JSON or protobuf) into spans. */
function spansOf(request: Json): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of (request.resourceSpans as Json[] | undefined) ?? []) {
    const resource = attributes((rs.resource as Json | undefined)?.attributes);
    for (const ss of (rs.scopeSpans as Json[] | undefined) ?? []) {
      for (const span of (ss.spans as Json[] | undefined) ?? []) {
        out.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: String(span.name),
          kind: Number(span.kind ?? 0),
          service: String(resource['service.name'] ?? ''),
          attributes: attributes(span.attributes),
          events: ((span.events as Json[] | undefined) ?? []).map(e => ({
            name: String(e.name),
            attributes: attributes(e.attributes),
          })),
          statusCode: Number((span.status as Json | undefined)?.code ?? 0),
          startNs: BigInt(String(span.startTimeUnixNano ?? 0)),
          endNs: BigInt(String(span.endTimeUnixNano ?? 0)),
        });
      }
    }
  }
  return out;
}

/**
 * Starts an OTLP/HTTP receiver on `127.0.0.1` (port 0) accepting `POST /v1/traces` as
 * `http/json` and `http/protobuf`, the two protocols of the official exporters. It answers 200
 * with an empty `ExportTraceServiceResponse` and keeps every span for the test to inspect.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests = { json: 0, protobuf: 0 };
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url?.split('?')[0] !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const type = req.headers['content-type'] ?? '';
      try {
        let decoded: Json;
        if (type.includes('json')) {
          requests.json++;
          decoded = JSON.parse(body.toString('utf8')) as Json;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else {
          requests.protobuf++;
          const message = otlpTraceRequestType().decode(body);
          decoded = otlpTraceRequestType().toObject(message, {
            longs: String,
            bytes: Buffer,
          }) as Json;
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        }
        spans.push(...spansOf(decoded));
        for (const wake of waiters) wake();
      } catch (error) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
      }
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    waitForSpans(predicate, count = 1, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const matching = spans.filter(predicate);
          if (matching.length < count) return false;
          cleanup();
          resolve(matching);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `waitForSpans: ${spans.filter(predicate).length} of ${count} matching spans after ${timeoutMs} ms (${spans.length} spans received: ${[...new Set(spans.map(s => `${s.service}/${s.name}`))].join(', ')})`,
            ),
          );
        }, timeoutMs);
        const wake = (): void => void check();
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        if (!check()) waiters.add(wake);
      });
    },
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
