import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { context, propagation, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { faultTolerant } from './faultTolerant.js';
import { constantBackoff } from './backoff.js';
import { Tracer, type TraceMessage } from './tracing.js';

describe('Tracer without a tracer provider or subscribers', () => {
  it('starts nothing and loads nothing', () => {
    const tracer = new Tracer('test', 'x:test:off');
    expect(tracer.enabled).toBe(false);
    expect(tracer.start('op')).toBeUndefined();
  });

  it('publishes start, asyncEnd and error on its tracing channel for APM tools', () => {
    const tracer = new Tracer('test', 'x:test:channel');
    const seen: string[] = [];
    const channel = tracingChannel<TraceMessage>('x:test:channel');
    const handlers = {
      start: (m: TraceMessage) => seen.push(`start ${m.name}`),
      end: () => {},
      asyncStart: () => {},
      asyncEnd: (m: TraceMessage) => seen.push(`end ${m.name} ${m.events.map(e => e.name)}`),
      error: (m: TraceMessage) => seen.push(`error ${(m.error as Error).message}`),
    };
    channel.subscribe(handlers);
    try {
      expect(tracer.enabled).toBe(true);
      const span = tracer.start('op', { attributes: { a: 1 } })!;
      span.event('retry');
      span.end(new Error('boom'));
      expect(seen).toEqual(['start op', 'error boom', 'end op retry']);
    } finally {
      channel.unsubscribe(handlers);
    }
  });
});

describe('Tracer with an OpenTelemetry SDK', () => {
  const exporter = new InMemorySpanExporter();
  let provider: NodeTracerProvider;

  beforeAll(() => {
    provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    provider.register();
  });
  afterEach(() => exporter.reset());
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  const byName = (spans: ReadableSpan[], name: string) => spans.filter(s => s.name === name);
  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

  it('continues a remote trace from traceparent and injects its own', () => {
    const tracer = new Tracer('test', 'x:test:otel');
    const incoming = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const span = tracer.start('GET', { kind: 'server', parent: { traceparent: incoming } })!;
    const headers: Record<string, string> = {};
    span.inject(headers);
    span.end();
    const [recorded] = exporter.getFinishedSpans();
    expect(recorded!.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(parentOf(recorded!)).toBe('b7ad6b7169203331');
    expect(headers.traceparent).toBe(
      `00-0af7651916cd43dd8448eb211c80319c-${recorded!.spanContext().spanId}-01`,
    );
  });

  it('traces a faultTolerant call: one call span, a child span per attempt, retries as events', async () => {
    let calls = 0;
    const seenParents: (string | undefined)[] = [];
    const fn = faultTolerant(
      async () => {
        seenParents.push(trace.getActiveSpan()?.spanContext().spanId);
        if (++calls < 3) throw Object.assign(new Error('flaky'), { code: 'ECONNRESET' });
        return 'ok';
      },
      {
        dependencyId: 'catalog',
        retryAttempts: 3,
        retryBackoff: constantBackoff(1),
        retryBudget: false,
      },
    );
    await expect(fn()).resolves.toBe('ok');
    const spans = exporter.getFinishedSpans();
    const [call] = byName(spans, 'faultTolerant catalog');
    const attempts = byName(spans, 'attempt');
    expect(call).toBeDefined();
    expect(attempts).toHaveLength(3);
    for (const a of attempts) expect(parentOf(a)).toBe(call!.spanContext().spanId);
    expect(attempts.map(a => a.attributes['x.attempt'])).toEqual([0, 1, 2]);
    expect(attempts.map(a => a.status.code)).toEqual([2, 2, 0]);
    expect(call!.events.map(e => e.name)).toEqual(['retry', 'retry']);
    // the wrapped function runs inside its attempt's span, so its own spans nest under it
    expect(seenParents).toEqual(attempts.map(a => a.spanContext().spanId));
    await fn.close();
  });

  it('records a breaker rejection and a fallback on the call span', async () => {
    const fn = faultTolerant(
      async () => {
        throw new Error('down');
      },
      {
        dependencyId: 'orders',
        retryAttempts: 0,
        retryBudget: false,
        circuitBreaker: { strategy: undefined },
        fallback: () => 'cached',
      },
    );
    for (let i = 0; i < 6; i++) await fn();
    const calls = byName(exporter.getFinishedSpans(), 'faultTolerant orders');
    expect(calls).toHaveLength(6);
    expect(calls.every(s => s.events.some(e => e.name === 'fallback'))).toBe(true);
    expect(calls.at(-1)!.events.map(e => e.name)).toContain('circuit.reject');
    await fn.close();
  });
});

describe('a tracer provider registered after traffic began', () => {
  it('is noticed within 64 calls', async () => {
    const tracer = new Tracer('test', 'x:test:late');
    expect(tracer.enabled).toBe(false);
    const provider = new NodeTracerProvider();
    provider.register();
    try {
      let calls = 1;
      while (calls < 1000 && !tracer.enabled) calls++;
      expect(calls).toBeLessThanOrEqual(64);
      expect(tracer.start('op')).toBeDefined();
    } finally {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    }
    expect(tracer.enabled).toBe(false);
  });
});

describe('Call.http client spans', () => {
  const exporter = new InMemorySpanExporter();
  let provider: NodeTracerProvider;
  beforeAll(() => {
    provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    provider.register();
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('sends traceparent from a client span nested under the attempt, with HTTP semantic conventions', async () => {
    const seen: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.traceparent as string | undefined);
      res.writeHead(req.url === '/missing' ? 503 : 200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fn = faultTolerant(
      async (call, path: string) => (await call.http.get(origin + path)).json(),
      {
        dependencyId: 'api',
        retryAttempts: 0,
        retryBudget: false,
      },
    );
    try {
      await expect(fn('/ok')).resolves.toEqual({ ok: true });
      await expect(fn('/missing')).rejects.toMatchObject({ status: 503 });
      const spans = exporter.getFinishedSpans();
      const clients = spans.filter(s => s.name === 'GET');
      const attempts = spans.filter(s => s.name === 'attempt');
      expect(clients).toHaveLength(2);
      expect(clients.map(c => c.attributes['http.response.status_code'])).toEqual([200, 503]);
      expect(clients[0]!.kind).toBe(2); // CLIENT
      expect(clients[0]!.attributes['server.address']).toBe('127.0.0.1');
      expect(clients[1]!.status.code).toBe(2);
      for (let i = 0; i < 2; i++) {
        expect(clients[i]!.parentSpanContext?.spanId).toBe(attempts[i]!.spanContext().spanId);
        const { traceId, spanId } = clients[i]!.spanContext();
        expect(seen[i]).toBe(`00-${traceId}-${spanId}-01`);
      }
    } finally {
      await fn.close();
      server.close();
    }
  });
});

describe('diagnostics channel names', () => {
  it('are stable', () => {
    const names: string[] = [];
    const onMessage = (_m: unknown, name: string | symbol) => names.push(String(name));
    subscribe('tracing:x:resilience:faultTolerant:start', onMessage);
    try {
      const fn = faultTolerant(async () => 1, { dependencyId: 'dc' });
      return fn().then(async () => {
        expect(names).toEqual(['tracing:x:resilience:faultTolerant:start']);
        await fn.close();
      });
    } finally {
      unsubscribe('tracing:x:resilience:faultTolerant:start', onMessage);
    }
  });
});
