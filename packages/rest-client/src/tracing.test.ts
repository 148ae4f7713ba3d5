import { context, propagation, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { constantBackoff } from '@x/resilience';
import { startTestServer, startTestServers, waitFor, type RecordedRequest } from '@x/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Resource } from './resource.js';
import { Resources } from './resources.js';
import { Shards } from './shards.js';

const open: Array<{ close(): Promise<void> }> = [];
function track<T extends { close(): Promise<void> }>(value: T): T {
  open.push(value);
  return value;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(x => x.close()));
});

/** Echoes the trace headers the server received. */
const echo = (req: RecordedRequest) => ({
  body: { traceparent: req.headers.traceparent ?? null, keys: req.query.getAll('key') },
});

describe('rest-client traces with an OpenTelemetry SDK', () => {
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

  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
  const inSpan = <T>(fn: () => Promise<T>) =>
    trace.getTracer('test').startActiveSpan('caller', async span => {
      try {
        return await fn();
      } finally {
        span.end();
      }
    });

  it('traces each try as a client span under a call span, retries as its events, and sends traceparent', async () => {
    const s = track(
      await startTestServer([
        (req: RecordedRequest) => ({ status: 503, body: { tp: req.headers.traceparent } }),
        (req: RecordedRequest) => ({ status: 200, body: { tp: req.headers.traceparent } }),
      ]),
    );
    const r = track(
      new Resource(s.url.replace('//', '//user:secret@'), {
        retry: { maxRetries: 2, backoff: constantBackoff(1) },
      }),
    );
    const body = (await inSpan(() => r.get('/items', { id: 1 }))) as { tp: string };
    const spans = exporter.getFinishedSpans();
    const caller = spans.find(x => x.name === 'caller')!;
    const call = spans.find(x => x.name === 'call GET')!;
    const tries = spans.filter(x => x.name === 'GET');
    expect(tries).toHaveLength(2);
    expect(parentOf(call)).toBe(caller.spanContext().spanId);
    for (const t of tries) {
      expect(parentOf(t)).toBe(call.spanContext().spanId);
      expect(t.spanContext().traceId).toBe(caller.spanContext().traceId);
      expect(t.kind).toBe(2); // client
    }
    expect(call.events.map(e => e.name)).toEqual(['retry']);
    const [first, second] = tries as [ReadableSpan, ReadableSpan];
    expect(first.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(s.url).port),
      'http.response.status_code': 503,
      'error.type': '503',
    });
    expect(String(first.attributes['url.full'])).not.toContain('secret');
    expect(second.attributes['http.request.resend_count']).toBe(1);
    // The server continues the trace of the try that reached it.
    expect(body.tp).toBe(`00-${second.spanContext().traceId}-${second.spanContext().spanId}-01`);
  });

  it('traces a stream try until its body is read, and sends traceparent', async () => {
    const s = track(await startTestServer(echo));
    const r = track(new Resource(s.url));
    const response = await r.stream('GET', '/file');
    expect(exporter.getFinishedSpans()).toHaveLength(0); // open while the body is
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { traceparent: string };
    await waitFor(() => exporter.getFinishedSpans().length === 1);
    const [span] = exporter.getFinishedSpans() as [ReadableSpan];
    expect(span.name).toBe('GET');
    expect(span.attributes['http.response.status_code']).toBe(200);
    expect(body.traceparent).toContain(span.spanContext().spanId);
  });

  it('marks a failed try with error.type', async () => {
    const s = track(await startTestServer({ reset: true }));
    const r = track(new Resource(s.url, { retry: false }));
    await expect(r.get('/down')).rejects.toThrow();
    const [only] = exporter.getFinishedSpans();
    expect(only!.name).toBe('GET');
    expect(only!.attributes['error.type']).toBe('SOCKET');
    expect(only!.status.code).toBe(2);
  });

  it('traces a hedge: both tries under the call span, the hedge as its event, the loser cancelled', async () => {
    const [slow, fast] = await startTestServers(2, { body: { from: 'fast' } });
    track(slow!);
    track(fast!);
    slow!.setScript({ delayMs: 2_000, body: { from: 'slow' } });
    const r = track(
      new Resources([slow!.url, fast!.url], {
        priority: host => (host === slow!.url ? 0 : 1),
        hedge: { delay: 30, maxExtraLoad: 1 },
      }),
    );
    await expect(inSpan(() => r.get('/read'))).resolves.toEqual({ from: 'fast' });
    const spans = exporter.getFinishedSpans();
    const call = spans.find(x => x.name === 'call GET')!;
    expect(call.events.map(e => [e.name, e.attributes?.['server.address']])).toEqual([
      ['hedge', fast!.url],
    ]);
    const tries = spans.filter(x => x.name === 'GET');
    expect(tries).toHaveLength(2);
    expect(tries.every(t => parentOf(t) === call.spanContext().spanId)).toBe(true);
    const loser = tries.find(t => String(t.attributes['url.full']).startsWith(slow!.url))!;
    expect(loser.attributes['error.type']).toBe('ABORTED');
  });

  it('gives a broadcast over N hosts one parent span with N client spans', async () => {
    const servers = await startTestServers(3, echo);
    servers.forEach(track);
    const r = track(
      new Resources(
        servers.map(s => s.url),
        { health: false },
      ),
    );
    const result = await inSpan(() => r.broadcast('GET', '/all'));
    expect(result.responses.size).toBe(3);
    const spans = exporter.getFinishedSpans();
    const parent = spans.find(x => x.name === 'broadcast GET')!;
    expect(parent.attributes['x.hosts']).toBe(3);
    const tries = spans.filter(x => x.name === 'GET');
    expect(tries).toHaveLength(3);
    expect(tries.every(t => parentOf(t) === parent.spanContext().spanId)).toBe(true);
    expect(new Set(tries.map(t => t.attributes['server.port'])).size).toBe(3);
    for (const [origin, response] of result.responses) {
      const t = tries.find(x => String(x.attributes['url.full']).startsWith(origin))!;
      expect((response.value() as { traceparent: string }).traceparent).toContain(
        t.spanContext().spanId,
      );
    }
  });

  it('gives a multicast one span with its shard keys, each host a child span with its keys', async () => {
    const servers = await startTestServers(3, echo);
    servers.forEach(track);
    const [h0, h1, h2] = servers.map(s => s.url) as [string, string, string];
    const shards = track(
      new Shards<number>({ [h0]: [0, 1], [h1]: [0, 2], [h2]: [1, 2] }, { health: false }),
    );
    const many = Array.from({ length: 40 }, (_, i) => 100 + i);
    shards.add(h2, many);
    const result = await inSpan(() =>
      shards.multicast([0, 1, 2, ...many], 'GET', (_, keys) => `/s?key=${keys.join('&key=')}`),
    );
    const spans = exporter.getFinishedSpans();
    const multicast = spans.find(x => x.name === 'multicast GET')!;
    expect(multicast.attributes['x.shard_keys.count']).toBe(43);
    expect(String(multicast.attributes['x.shard_keys']).split(',')).toHaveLength(32);
    const tries = spans.filter(x => x.name === 'GET');
    expect(tries).toHaveLength(result.hosts.length);
    for (const t of tries) {
      expect(parentOf(t)).toBe(multicast.spanContext().spanId);
      const host = result.hosts.find(h => String(t.attributes['url.full']).startsWith(h))!;
      const keys = [...result.assignment].filter(([, h]) => h === host).map(([k]) => k);
      expect(t.attributes['x.shard_keys.count']).toBe(keys.length);
    }
  });
});
