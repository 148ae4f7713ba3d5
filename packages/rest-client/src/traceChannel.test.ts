import { tracingChannel } from 'node:diagnostics_channel';
import { constantBackoff, type TraceMessage } from '@x/resilience';
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
