import { tracingChannel } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type { TraceMessage } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import { route } from './route.js';
import { routeTracer } from './routeTracer.js';

describe('routes traces without a tracer provider', () => {
  it('starts nothing and loads no @opentelemetry/api when nobody listens', async () => {
    const r = route({ metricLabel: 'quiet', target: (n: unknown) => (n as number) + 1 });
    await r.start();
    try {
      for (let i = 0; i < 100; i++) await r.startRoute(i, i);
    } finally {
      await r.stop();
    }
    expect(routeTracer.enabled).toBe(false);
    expect(routeTracer.start('route quiet')).toBeUndefined();
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    expect(loaded.filter(k => k.includes('/node_modules/@opentelemetry/api/'))).toEqual([]);
  });

  it('publishes each execution on the x:routes:execute tracing channel', async () => {
    const r = route({ metricLabel: 'chan', target: (n: unknown) => (n as number) * 2 });
    await r.start();
    const seen: TraceMessage[] = [];
    const channel = tracingChannel<TraceMessage>('x:routes:execute');
    const noop = () => {};
    const handlers = {
      start: noop,
      end: noop,
      asyncStart: noop,
      asyncEnd: (m: TraceMessage) => seen.push(m),
      error: noop,
    };
    channel.subscribe(handlers);
    try {
      expect(await r.startRoute('a', 2)).toMatchObject({ kind: 'success', value: 4 });
    } finally {
      channel.unsubscribe(handlers);
      await r.stop();
    }
    expect(seen.map(m => [m.name, m.attributes['x.route'], m.attributes['x.outcome']])).toEqual([
      ['route chan', 'chan', 'ok'],
    ]);
  });
});
