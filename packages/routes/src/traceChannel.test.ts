import { tracingChannel } from 'node:diagnostics_channel';
import type { TraceMessage } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import { route } from './route.js';

describe('routes traces without a tracer provider', () => {
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
