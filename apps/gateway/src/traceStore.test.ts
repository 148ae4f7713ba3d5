import { describe, expect, it } from 'vitest';
import { TraceStore, type StoredSpan } from './traceStore.js';

let next = 0;
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** A span of trace `trace` (a small number), `ms` after the epoch start. */
function span(trace: number, overrides: Partial<StoredSpan> = {}): StoredSpan {
  return {
    traceId: hex(trace, 32),
    spanId: hex(++next, 16),
    parentSpanId: '',
    name: 'GET /api/search',
    kind: 2,
    service: 'x-gateway',
    instance: undefined,
    startMs: 1_000,
    endMs: 1_010,
    statusCode: 0,
    statusMessage: undefined,
    attributes: { 'http.response.status_code': 200 },
    events: [],
    ...overrides,
  };
}

const limits = { dashboardTraces: 3, maxSpansPerTrace: 10, maxSpans: 1_000, maxPending: 4 };

describe('TraceStore', () => {
  it('lists a trace under its entry span once it ended, and attaches late spans by trace id', () => {
    const store = new TraceStore(limits);
    const entry = span(1, { startMs: 1_000, endMs: 1_100 });
    const tryA = span(1, {
      name: 'GET',
      kind: 3,
      parentSpanId: entry.spanId,
      startMs: 1_010,
      endMs: 1_050,
    });
    store.add(tryA); // children end first
    expect(store.list()).toEqual([]);
    expect(store.stats()).toMatchObject({ pending: 1, spans: 1 });
    store.add(entry, true);
    expect(store.stats()).toMatchObject({ pending: 0, traces: 1, spans: 2 });
    // the instance's batch arrives after the entry span ended
    const late = span(1, {
      name: 'GET /search',
      service: 'x-catalog',
      instance: 'catalog.v1.1',
      parentSpanId: tryA.spanId,
      startMs: 1_020,
      endMs: 1_045,
    });
    store.add(late);
    const [group] = store.list();
    expect(group).toMatchObject({ endpoint: 'GET /api/search' });
    expect(group!.traces[0]).toMatchObject({
      durationMs: 100,
      status: 200,
      spans: 3,
      error: false,
      services: ['x-gateway', 'x-catalog'],
    });
    const detail = store.get(entry.traceId)!;
    expect(detail.waterfall.map(s => [s.name, s.depth, s.offsetMs, s.durationMs])).toEqual([
      ['GET /api/search', 0, 0, 100],
      ['GET', 1, 10, 40],
      ['GET /search', 2, 20, 25],
    ]);
  });

  it('keeps the newest dashboardTraces per endpoint, newest first', () => {
    const store = new TraceStore(limits);
    for (let t = 1; t <= 5; t++) store.add(span(t), true);
    store.add(span(9, { name: 'POST /api/reports' }), true);
    const list = store.list();
    expect(list.map(g => g.endpoint)).toEqual(['GET /api/search', 'POST /api/reports']);
    expect(list[0]!.traces.map(t => t.traceId)).toEqual([hex(5, 32), hex(4, 32), hex(3, 32)]);
    expect(store.get(hex(1, 32))).toBeUndefined();
    expect(store.stats()).toMatchObject({ traces: 4, spans: 4, evicted: 2 });
  });

  it('bounds spans per trace, pending traces and spans in all', () => {
    const store = new TraceStore({ ...limits, maxSpans: 25 });
    for (let i = 0; i < 15; i++) store.add(span(1, { kind: 1 }));
    store.add(span(1), true);
    expect(store.get(hex(1, 32))).toMatchObject({ spans: 10, droppedSpans: 6 });
    // spans of traces whose entry never ends (or was evicted): at most maxPending traces
    for (let t = 100; t < 120; t++) store.add(span(t, { kind: 1 }));
    expect(store.stats().pending).toBe(4);
    // 25 spans at most: the oldest traces go first, whatever their state
    for (let t = 200; t < 210; t++) for (let i = 0; i < 5; i++) store.add(span(t, { kind: 1 }));
    const stats = store.stats();
    expect(stats.spans).toBeLessThanOrEqual(25);
    expect(stats.pending).toBeLessThanOrEqual(4);
    expect(store.get(hex(1, 32))).toBeUndefined(); // the oldest complete trace went too
  });

  it('marks a trace with a failed span as an error and never loops on a span that is its own ancestor', () => {
    const store = new TraceStore(limits);
    const entry = span(7, { attributes: { 'http.response.status_code': 502 } });
    const a = span(7, { kind: 1, statusCode: 2, statusMessage: 'boom' });
    const b = span(7, { kind: 1, parentSpanId: a.spanId });
    store.add({ ...a, parentSpanId: b.spanId });
    store.add(b);
    store.add(entry, true);
    const detail = store.get(entry.traceId)!;
    expect(detail).toMatchObject({ error: true, status: 502 });
    // a and b point at each other: neither is reachable from a root, the entry still is
    expect(detail.waterfall.map(s => s.spanId)).toContain(entry.spanId);
  });
});
