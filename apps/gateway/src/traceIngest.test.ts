import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { TraceIngest, type TraceIngestListener } from './traceIngest.js';
import { TraceStore } from './traceStore.js';

const TOKEN = 'ingest-test-token-0123456789';
const open: TraceIngestListener[] = [];
afterEach(async () => {
  for (const l of open.splice(0)) await l.close();
});

async function ingest() {
  const store = new TraceStore({ dashboardTraces: 5, maxSpansPerTrace: 50, maxSpans: 500 });
  const receiver = new TraceIngest(store, TOKEN);
  const listener = await receiver.listen();
  open.push(listener);
  return { store, receiver, listener };
}

describe('TraceIngest (loopback OTLP receiver)', () => {
  it.each(['http/json', 'http/protobuf'] as const)(
    'keeps what the official %s exporter posts with the token',
    async protocol => {
      const { store, receiver, listener } = await ingest();
      const options = { url: listener.url, headers: { authorization: `Bearer ${TOKEN}` } };
      const exporter =
        protocol === 'http/json' ? new JsonExporter(options) : new ProtoExporter(options);
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({
          'service.name': 'x-catalog',
          'service.instance.id': 'catalog.v1.0',
        }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      });
      const tracer = provider.getTracer('t');
      const span = tracer.startSpan('GET /search', {
        attributes: { 'x.shard_keys': '0,1', 'x.n': 3, long: 'y'.repeat(1_000) },
      });
      span.setStatus({ code: 2, message: 'slow' });
      span.end();
      await provider.forceFlush();
      await provider.shutdown();
      const id = span.spanContext().traceId;
      expect(receiver.counters).toMatchObject({ requests: 1, spans: 1, refused: 0 });
      // not listed (no gateway entry span yet), but kept as pending under its trace id
      expect(store.stats()).toMatchObject({ pending: 1, spans: 1 });
      const entry = {
        traceId: id,
        spanId: 'aaaaaaaaaaaaaaaa',
        parentSpanId: '',
        name: 'GET /api/search',
        kind: 2,
        service: 'x-gateway',
        instance: undefined,
        startMs: Date.now() - 10,
        endMs: Date.now(),
        statusCode: 0,
        statusMessage: undefined,
        attributes: {},
        events: [],
      };
      store.add(entry, true);
      const got = store.get(id)!.waterfall.find(s => s.service === 'x-catalog')!;
      expect(got).toMatchObject({
        name: 'GET /search',
        instance: 'catalog.v1.0',
        statusCode: 2,
        statusMessage: 'slow',
        attributes: { 'x.shard_keys': '0,1', 'x.n': 3 },
      });
      expect(String(got.attributes.long).length).toBe(257); // cut to 256 characters and '…'
      expect(got.durationMs).toBeGreaterThanOrEqual(0);
    },
  );

  it('refuses a post without the token (401), a GET (405) and a body that is no export request (400)', async () => {
    const { store, receiver, listener } = await ingest();
    const body = JSON.stringify({ resourceSpans: [] });
    const headers = { 'content-type': 'application/json' };
    expect((await fetch(listener.url, { method: 'POST', headers, body })).status).toBe(401);
    const wrong = { ...headers, authorization: 'Bearer not-the-token-at-all' };
    expect((await fetch(listener.url, { method: 'POST', headers: wrong, body })).status).toBe(401);
    expect((await fetch(listener.url)).status).toBe(405);
    const res = await fetch(listener.url, {
      method: 'POST',
      headers: { ...headers, authorization: `Bearer ${TOKEN}` },
      body: '{not json',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /^body: expected an OTLP ExportTraceServiceRequest/,
    );
    expect(receiver.counters.refused).toBe(4);
    expect(store.stats().spans).toBe(0);
  });
});
