import { tracingChannel } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { constantBackoff, type TraceMessage } from '@x/resilience';
import { requestTracer } from './internal/requestTracer.js';
import { startTestServer, type RecordedRequest } from '@x/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Resource } from './resource.js';

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

describe('rest-client traces without a tracer provider', () => {
  it('sends no traceparent and starts nothing', async () => {
    const s = track(await startTestServer(echo));
    const r = track(new Resource(s.url));
    expect(await r.get('/a')).toEqual({ traceparent: null, keys: [] });
  });

  it('costs a flag check per request when nobody listens: no span, @opentelemetry/api not loaded', async () => {
    const s = track(await startTestServer(echo));
    const r = track(new Resource(s.url));
    for (let i = 0; i < 100; i++) await r.get('/a');
    expect(requestTracer.enabled).toBe(false);
    expect(requestTracer.start('GET')).toBeUndefined();
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    expect(loaded.filter(k => k.includes('/node_modules/@opentelemetry/api/'))).toEqual([]);
    // The check itself: well under a microsecond (about 4 ns on an idle machine).
    let on = 0;
    const started = process.hrtime.bigint();
    for (let i = 0; i < 1_000_000; i++) if (requestTracer.enabled) on++;
    const nsPerCheck = Number(process.hrtime.bigint() - started) / 1_000_000;
    expect(on).toBe(0);
    expect(nsPerCheck).toBeLessThan(1_000);
    console.log(`requestTracer.enabled with nobody listening: ${nsPerCheck.toFixed(1)} ns`);
  });

  it('publishes each try on the x:rest-client:request tracing channel', async () => {
    const s = track(await startTestServer([{ status: 503 }, { status: 200 }]));
    const r = track(new Resource(s.url, { retry: { maxRetries: 2, backoff: constantBackoff(1) } }));
    const seen: TraceMessage[] = [];
    const calls: TraceMessage[] = [];
    const channel = tracingChannel<TraceMessage>('x:rest-client:request');
    const callChannel = tracingChannel<TraceMessage>('x:rest-client:call');
    const noop = () => {};
    const handlers = {
      start: noop,
      end: noop,
      asyncStart: noop,
      asyncEnd: (m: TraceMessage) => seen.push(m),
      error: noop,
    };
    const callHandlers = { ...handlers, asyncEnd: (m: TraceMessage) => calls.push(m) };
    channel.subscribe(handlers);
    callChannel.subscribe(callHandlers);
    try {
      await r.get('/x');
    } finally {
      channel.unsubscribe(handlers);
      callChannel.unsubscribe(callHandlers);
    }
    expect(seen.map(m => [m.name, m.attributes['http.response.status_code']])).toEqual([
      ['GET', 503],
      ['GET', 200],
    ]);
    expect(seen[0]!.attributes['url.full']).toBe(`${s.url}/x`);
    expect(calls.map(m => [m.name, m.events.map(e => e.name)])).toEqual([['call GET', ['retry']]]);
  });
});
