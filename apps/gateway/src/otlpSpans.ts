import type protobuf from 'protobufjs';
import { boundedAttributes } from './spanAttributes.js';
import type { StoredSpan } from './traceStore.js';

// The part of opentelemetry/proto/trace/v1/trace.proto (with common and resource) the store reads.
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

type Json = Record<string, unknown>;

let requestType: protobuf.Type | undefined;

/** The protobuf type of an OTLP trace export request (protobufjs loaded and the schema parsed on first use). */
async function exportRequestType(): Promise<protobuf.Type> {
  if (requestType === undefined) {
    const { default: pb } = await import('protobufjs');
    requestType = pb
      .parse(PROTO, { keepCase: false })
      .root.lookupType('otlp.ExportTraceServiceRequest');
  }
  return requestType;
}

/**
 * The spans of one OTLP/HTTP trace export request: `http/json` when `contentType` says JSON,
 * else `http/protobuf` (the two protocols of the official exporters). Throws on a body that is
 * neither.
 */
export async function otlpSpans(body: Buffer, contentType: string): Promise<StoredSpan[]> {
  if (contentType.includes('json')) return spansOf(JSON.parse(body.toString('utf8')) as Json);
  const type = await exportRequestType();
  return spansOf(type.toObject(type.decode(body), { longs: String, bytes: Buffer }) as Json);
}

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

function attributes(list: unknown): ReturnType<typeof boundedAttributes> {
  const pairs = ((Array.isArray(list) ? list : []) as Json[]).map(
    kv => [String(kv.key), anyValue(kv.value as Json | undefined)] as const,
  );
  return boundedAttributes(pairs);
}

/** Epoch milliseconds of an OTLP `*_unix_nano` (a decimal string or number). */
function epochMs(nanos: unknown): number {
  const n = BigInt(String(nanos ?? 0));
  return Number(n / 1_000n) / 1_000;
}

const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/** Flattens an export request (decoded from JSON or protobuf) into spans. */
function spansOf(request: Json): StoredSpan[] {
  const out: StoredSpan[] = [];
  for (const rs of list(request.resourceSpans)) {
    const resource = attributes((rs.resource as Json | undefined)?.attributes);
    const service = String(resource['service.name'] ?? '');
    const instance =
      resource['service.instance.id'] === undefined
        ? undefined
        : String(resource['service.instance.id']);
    for (const ss of list(rs.scopeSpans))
      for (const span of list(ss.spans)) {
        const status = span.status as Json | undefined;
        out.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: String(span.name ?? '').slice(0, 256),
          kind: Number(span.kind ?? 0),
          service,
          instance,
          startMs: epochMs(span.startTimeUnixNano),
          endMs: epochMs(span.endTimeUnixNano),
          statusCode: Number(status?.code ?? 0),
          statusMessage:
            typeof status?.message === 'string' && status.message !== ''
              ? status.message.slice(0, 256)
              : undefined,
          attributes: attributes(span.attributes),
          events: list(span.events)
            .slice(0, 8)
            .map(e => ({
              name: String(e.name ?? '').slice(0, 128),
              atMs: epochMs(e.timeUnixNano),
              attributes: attributes(e.attributes),
            })),
        });
      }
  }
  return out.filter(s => /^[0-9a-f]{32}$/.test(s.traceId) && /^[0-9a-f]{16}$/.test(s.spanId));
}
