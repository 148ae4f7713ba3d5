import { context, propagation, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { waitFor } from '@x/testkit';
import { BullMQOtel } from 'bullmq-otel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { syncBackoff } from './backoffPolicy.js';
import { bullmqEntrypoint } from './bullmqEntrypoint.js';
import { httpEntrypoint } from './httpEntrypoint.js';
import { memoryQueue } from './memoryQueue.js';
import { route, type Route } from './route.js';
import { deferred, httpRequest } from './test/helpers.js';
import { describeRedis, REDIS_URL, uniqueName } from './test/redis.js';

const exporter = new InMemorySpanExporter();
let provider: NodeTracerProvider;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(() => {
  provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  exporter.reset();
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

function track<T extends Route<any, any, any, any>>(r: T): T {
  cleanups.push(() => r.stop({ timeoutMs: 2_000 }));
  return r;
}

const routeSpans = () => exporter.getFinishedSpans().filter(s => s.name.startsWith('route '));
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('routes traces with an OpenTelemetry SDK', () => {
  it('the HTTP entrypoint runs a server span continuing the request traceparent', async () => {
    const http = httpEntrypoint({ port: 0 });
    const r = track(
      route({
        metricLabel: 'echo',
        entrypoint: http,
        target: () => trace.getActiveSpan()?.spanContext().traceId ?? null,
      }),
    );
    await r.start();
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parent = 'b7ad6b7169203331';
    const res = await httpRequest(http.url, {
      body: 'x',
      headers: { traceparent: `00-${traceId}-${parent}-01` },
    });
    expect(res.status).toBe(200);
    // The target ran inside the route's span.
    expect(res.body).toContain(traceId);
    await waitFor(() => routeSpans().length === 1);
    const [span] = routeSpans() as [ReadableSpan];
    expect(span.name).toBe('route echo');
    expect(span.kind).toBe(1); // server
    expect(span.spanContext().traceId).toBe(traceId);
    expect(parentOf(span)).toBe(parent);
    expect(span.attributes).toMatchObject({
      'x.route': 'echo',
      'x.outcome': 'ok',
      'x.attempts': 1,
    });
  });

  it('a queue message is a consumer span with its retries as events and its outcome', async () => {
    const queue = memoryQueue<string>();
    let calls = 0;
    const done = deferred();
    const r = track(
      route({
        metricLabel: 'flaky',
        entrypoint: queue,
        backoff: syncBackoff({ maxRetries: 3, delay: 1 }),
        target: (message: string) => {
          if (++calls < 3) throw new Error(`boom ${calls}`);
          done.resolve();
          return message;
        },
      }),
    );
    await r.start();
    queue.publish('a');
    await done.promise;
    await waitFor(() => routeSpans().length === 1);
    const [span] = routeSpans() as [ReadableSpan];
    expect(span.kind).toBe(4); // consumer
    expect(span.events.map(e => [e.name, e.attributes?.['x.attempt']])).toEqual([
      ['retry', 1],
      ['retry', 2],
    ]);
    expect(span.attributes).toMatchObject({ 'x.outcome': 'ok', 'x.attempts': 3 });
  });

  it('a terminal failure is an error span with x.outcome failed', async () => {
    const queue = memoryQueue<string>();
    const r = track(
      route({
        metricLabel: 'broken',
        entrypoint: queue,
        backoff: syncBackoff({ maxRetries: 1, delay: 1 }),
        target: () => {
          throw new TypeError('bad');
        },
      }),
    );
    await r.start();
    queue.publish('a');
    await waitFor(() => routeSpans().length === 1);
    const [span] = routeSpans() as [ReadableSpan];
    expect(span.status.code).toBe(2);
    expect(span.attributes).toMatchObject({
      'x.outcome': 'failed',
      'x.failure_reason': 'retries-exhausted',
      'x.attempts': 2,
      'error.type': 'TypeError',
    });
  });

  it('an in-process call is an internal span, child of the caller span', async () => {
    const r = track(route({ metricLabel: 'inproc', target: (n: unknown) => (n as number) + 1 }));
    await r.start();
    await trace.getTracer('test').startActiveSpan('caller', async caller => {
      const outcome = await r.startRoute('id', 1);
      caller.end();
      expect(outcome.kind).toBe('success');
    });
    const caller = exporter.getFinishedSpans().find(s => s.name === 'caller')!;
    const [span] = routeSpans() as [ReadableSpan];
    expect(span.kind).toBe(0);
    expect(parentOf(span)).toBe(caller.spanContext().spanId);
  });
});

describeRedis('BullMQ jobs traced with bullmq-otel', () => {
  it('a job published inside a span is consumed in a span of the same trace', async () => {
    const ep = bullmqEntrypoint<string>({
      queue: uniqueName('otel'),
      connection: REDIS_URL!,
      telemetry: new BullMQOtel('routes-test'),
    });
    cleanups.push(() => ep.obliterate());
    const seen = deferred<string | undefined>();
    const r = track(
      route({
        metricLabel: 'job',
        entrypoint: ep,
        target: (m: string) => {
          seen.resolve(trace.getActiveSpan()?.spanContext().traceId);
          return m;
        },
      }),
    );
    await r.start();
    const producerTrace = await trace.getTracer('test').startActiveSpan('producer', async span => {
      await ep.publish('hello');
      span.end();
      return span.spanContext().traceId;
    });
    expect(await seen.promise).toBe(producerTrace);
    await waitFor(() => routeSpans().length === 1);
    const [span] = routeSpans() as [ReadableSpan];
    expect(span.spanContext().traceId).toBe(producerTrace);
    expect(span.kind).toBe(4);
    expect(span.attributes['x.outcome']).toBe('ok');
    // bullmq-otel's producer (the add) and consumer (the process) spans are in the same trace,
    // the route's span inside the consumer's.
    const bullSpans = () =>
      exporter
        .getFinishedSpans()
        .filter(
          s =>
            s.instrumentationScope.name === 'routes-test' &&
            s.spanContext().traceId === producerTrace,
        );
    // The consumer span ends once the processor returned: after the route's span.
    await waitFor(() => bullSpans().some(s => s.kind === 4));
    const bull = bullSpans();
    expect(bull.map(s => s.kind)).toEqual(expect.arrayContaining([3, 4]));
    const consumer = bull.find(s => s.kind === 4)!;
    expect(parentOf(span)).toBe(consumer.spanContext().spanId);
  });

  it('a job published without telemetry is still a consumer span (a trace of its own)', async () => {
    const ep = bullmqEntrypoint<string>({ queue: uniqueName('plain'), connection: REDIS_URL! });
    cleanups.push(() => ep.obliterate());
    const r = track(route({ metricLabel: 'plain', entrypoint: ep, target: (m: string) => m }));
    await r.start();
    await ep.publish('x');
    await waitFor(() => routeSpans().length === 1);
    expect(routeSpans()[0]!.kind).toBe(4);
  });
});
