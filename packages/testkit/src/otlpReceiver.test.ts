import { afterEach, describe, expect, it } from 'vitest';
import { otlpTraceRequestType, startOtlpReceiver, type OtlpReceiver } from './otlpReceiver.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const request = (protocol: 'json' | 'protobuf') => {
  const span = {
    traceId: protocol === 'json' ? TRACE : Buffer.from(TRACE, 'hex'),
    spanId: protocol === 'json' ? 'b7ad6b7169203331' : Buffer.from('b7ad6b7169203331', 'hex'),
    name: 'GET /api/search',
    kind: 2,
    startTimeUnixNano: '1000',
    endTimeUnixNano: '2000',
    attributes: [
      { key: 'http.response.status_code', value: { intValue: 200 } },
      { key: 'url.path', value: { stringValue: '/api/search' } },
    ],
    events: [{ name: 'retry', attributes: [] }],
    status: { code: 2 },
  };
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'gateway' } }] },
        scopeSpans: [{ spans: [span] }],
      },
    ],
  };
};

describe('startOtlpReceiver', () => {
  let receiver: OtlpReceiver | undefined;
  afterEach(async () => receiver?.close());

  it('receives http/json and http/protobuf exports as the same spans', async () => {
    receiver = await startOtlpReceiver();
    const json = await fetch(`${receiver.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('json')),
    });
    expect(json.status).toBe(200);
    const type = otlpTraceRequestType();
    const proto = await fetch(`${receiver.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: type.encode(type.fromObject(request('protobuf'))).finish(),
    });
    expect(proto.status).toBe(200);
    const spans = await receiver.waitForSpans(s => s.traceId === TRACE, 2);
    expect(receiver.requests).toEqual({ json: 1, protobuf: 1 });
    for (const span of spans) {
      expect(span).toMatchObject({
        spanId: 'b7ad6b7169203331',
        parentSpanId: '',
        name: 'GET /api/search',
        kind: 2,
        service: 'gateway',
        attributes: { 'http.response.status_code': 200, 'url.path': '/api/search' },
        statusCode: 2,
        startNs: 1000n,
        endNs: 2000n,
      });
      expect(span.events.map(e => e.name)).toEqual(['retry']);
    }
  });

  it('answers 400 to a body it cannot decode and says what it has when a wait times out', async () => {
    receiver = await startOtlpReceiver();
    const bad = await fetch(`${receiver.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(bad.status).toBe(400);
    await expect(receiver.waitForSpans(() => true, 1, 50)).rejects.toThrow(/0 of 1 matching spans/);
  });
});

describe('startOtlpReceiver with the official exporters', () => {
  it.each(['http/protobuf', 'http/json'] as const)('receives what %s sends', async protocol => {
    const { trace, context } = await import('@opentelemetry/api');
    const { BasicTracerProvider, SimpleSpanProcessor } =
      await import('@opentelemetry/sdk-trace-base');
    const { resourceFromAttributes } = await import('@opentelemetry/resources');
    const receiver = await startOtlpReceiver();
    const url = `${receiver.url}/v1/traces`;
    const exporter =
      protocol === 'http/json'
        ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url })
        : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter({ url });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'probe' }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    try {
      const tracer = provider.getTracer('t');
      const parent = tracer.startSpan('parent', { kind: 1 });
      const child = tracer.startSpan(
        'child',
        { attributes: { n: 3, s: 'x', b: true } },
        trace.setSpan(context.active(), parent),
      );
      child.addEvent('retry', { attempt: 1 });
      child.end();
      parent.end();
      const [p] = await receiver.waitForSpans(s => s.name === 'parent');
      const [c] = await receiver.waitForSpans(s => s.name === 'child');
      expect(p!.service).toBe('probe');
      expect(p!.kind).toBe(2); // OTLP kind = API kind + 1 (server)
      expect(c!.traceId).toBe(p!.traceId);
      expect(c!.parentSpanId).toBe(p!.spanId);
      expect(c!.attributes).toEqual({ n: 3, s: 'x', b: true });
      expect(c!.events).toEqual([{ name: 'retry', attributes: { attempt: 1 } }]);
      expect(c!.endNs).toBeGreaterThan(c!.startNs);
      const key = protocol === 'http/json' ? 'json' : 'protobuf';
      expect(receiver.requests[key]).toBeGreaterThan(0);
    } finally {
      await provider.shutdown();
      await receiver.close();
    }
  });
});
