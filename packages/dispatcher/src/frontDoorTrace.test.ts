import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remote } from './backends/remote.js';
import { createDispatcher, type Dispatcher } from './createDispatcher.js';

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('front door spans', () => {
  const exporter = new InMemorySpanExporter();
  let provider: NodeTracerProvider;
  let instance: Server;
  let app: Server;
  let base: string;
  let dispatcher: Dispatcher;
  const seen: (string | undefined)[] = [];

  beforeAll(async () => {
    provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    provider.register();
    instance = createServer((req, res) => {
      seen.push(req.headers.traceparent as string | undefined);
      res.writeHead(req.url === '/api/fail' ? 503 : 200).end('ok');
    });
    const url = await listen(instance);
    dispatcher = createDispatcher({
      modules: {
        api: {
          versions: { v1: { backend: remote([url]), scaling: { kind: 'manual', instances: 1 } } },
        },
      },
      rules: [{ url: '*/api/*', module: 'api' }],
    });
    const door = dispatcher.mount({});
    app = createServer((req, res) => door.handler(req, res));
    base = await listen(app);
  });

  afterAll(async () => {
    app?.close();
    await dispatcher?.close();
    instance?.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('one server span per proxied request, continuing the caller and parent of the instance', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    for (const path of ['/api/items', '/api/fail']) {
      const res = await fetch(`${base}${path}`, {
        headers: { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=1' },
      });
      await res.arrayBuffer();
    }
    await new Promise(resolve => setTimeout(resolve, 50)); // spans end on 'close'
    const spans = exporter.getFinishedSpans().filter(s => s.name === 'GET api');
    expect(spans).toHaveLength(2);
    for (const [i, span] of spans.entries()) {
      expect(span.kind).toBe(1); // SERVER
      expect(span.spanContext().traceId).toBe(traceId);
      expect(span.parentSpanContext?.spanId).toBe(callerSpan);
      expect(span.attributes).toMatchObject({ 'x.module': 'api', 'x.version': 'v1' });
      // the instance continues from the front door's span, not from the caller's
      expect(seen[i]).toBe(`00-${traceId}-${span.spanContext().spanId}-01`);
    }
    expect(spans.map(s => s.attributes['http.response.status_code'])).toEqual([200, 503]);
    expect(spans.map(s => s.status.code)).toEqual([0, 2]);
  });
});
