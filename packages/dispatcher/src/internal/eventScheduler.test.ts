import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@x/resilience';
import { inProcess } from '../backends/inProcess.js';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from '../createDispatcher.js';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import { memoryEventStore } from '../eventStore.js';

const open: Dispatcher[] = [];
function make(options: Partial<DispatcherOptions> = {}): { d: Dispatcher; clock: ManualClock } {
  const clock = new ManualClock(1_000_000);
  const d = createDispatcher({
    clock,
    modules: { default: { versions: { v1: { backend: inProcess(() => ({})) } } } },
    ...options,
  });
  open.push(d);
  return { d, clock };
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(d => d.close()));
});

describe('scheduled events', () => {
  it('fire in eta order (insertion order on ties), at their eta', async () => {
    const { d, clock } = make();
    const fired: string[] = [];
    const t0 = clock.now();
    await d.addEvent(() => fired.push('c'), t0 + 300);
    await d.addEvent(() => fired.push('a'), t0 + 100);
    await d.addEvent(() => fired.push('b1'), t0 + 200);
    await d.addEvent(() => fired.push('b2'), new Date(t0 + 200));
    await clock.advance(99);
    expect(fired).toEqual([]);
    await clock.advance(1);
    expect(fired).toEqual(['a']);
    await clock.advance(100);
    expect(fired).toEqual(['a', 'b1', 'b2']);
    await clock.advance(1_000);
    expect(fired).toEqual(['a', 'b1', 'b2', 'c']);
    expect(d.stats().events.pending).toBe(0);
  });

  it('an eta in the past fires at once', async () => {
    const { d, clock } = make();
    let fired = false;
    await d.addEvent(() => (fired = true), clock.now() - 5_000);
    await clock.advance(0);
    expect(fired).toBe(true);
  });

  it('updateEvent reschedules a pending keyed event and says whether it found one', async () => {
    const { d, clock } = make();
    const fired: number[] = [];
    const t0 = clock.now();
    await d.addEvent(
      () => fired.push(clock.now() - t0),
      t0 + 1_000,
      'channel-disconnect',
      'client-1',
    );
    expect(await d.updateEvent(t0 + 3_000, 'channel-disconnect', 'client-1')).toBe(true);
    await clock.advance(1_000);
    expect(fired).toEqual([]);
    expect(await d.updateEvent(t0 + 2_000, 'channel-disconnect', 'client-1')).toBe(true); // earlier again
    await clock.advance(1_000);
    expect(fired).toEqual([2_000]);
    // fired already, never existed, other service: not found (App Engine silently did nothing)
    expect(await d.updateEvent(t0 + 9_000, 'channel-disconnect', 'client-1')).toBe(false);
    expect(await d.updateEvent(t0 + 9_000, 'channel-disconnect', 'nobody')).toBe(false);
    expect(await d.updateEvent(t0 + 9_000, 'other', 'client-1')).toBe(false);
    await clock.advance(10_000);
    expect(fired).toEqual([2_000]);
  });

  it('works as a debounced heartbeat timeout', async () => {
    const { d, clock } = make();
    let disconnected = 0;
    const timeout = 1_000;
    await d.addEvent(() => disconnected++, clock.now() + timeout, 'heartbeat', 'c1');
    for (let i = 0; i < 5; i++) {
      await clock.advance(800);
      expect(await d.updateEvent(clock.now() + timeout, 'heartbeat', 'c1')).toBe(true);
    }
    expect(disconnected).toBe(0);
    await clock.advance(1_000);
    expect(disconnected).toBe(1);
  });

  it('cancelEvent and handles cancel pending events only', async () => {
    const { d, clock } = make();
    const fired: string[] = [];
    const t0 = clock.now();
    await d.addEvent(() => fired.push('keyed'), t0 + 100, 'svc', 'e1');
    const handle = await d.addEvent(() => fired.push('handle'), t0 + 100);
    const rescheduled = await d.addEvent(() => fired.push('moved'), t0 + 100, 'svc', 'e2');
    expect(await d.cancelEvent('svc', 'e1')).toBe(true);
    expect(await d.cancelEvent('svc', 'e1')).toBe(false);
    expect(await handle.cancel()).toBe(true);
    expect(await rescheduled.reschedule(t0 + 500)).toBe(true);
    await clock.advance(200);
    expect(fired).toEqual([]);
    await clock.advance(300);
    expect(fired).toEqual(['moved']);
    expect(await rescheduled.cancel()).toBe(false);
    expect(await d.cancelEvent('svc', 'never')).toBe(false);
  });

  it("refuses an eta in seconds since the epoch (App Engine's add_event unit) instead of firing it at once", async () => {
    // google/appengine/tools/devappserver2/dispatcher.py add_event: "eta: the time ... in seconds
    // since the epoch"; scheduled_executor.py compares it with time.time()
    const d = createDispatcher({
      modules: { default: { versions: { v1: { backend: inProcess(() => ({})) } } } },
    }); // the real epoch-ms clock
    open.push(d);
    let fired = 0;
    const etaSeconds = Date.now() / 1000 + 60;
    await expect(d.addEvent(() => fired++, etaSeconds, 'svc', 'k')).rejects.toThrow(
      /eta must be epoch milliseconds or a Date, got [\d.]+, which is seconds since the epoch \(App Engine's unit\): pass \d+/,
    );
    await expect(
      d.addEvent(() => fired++, Math.floor(Date.now() / 1000) - 5),
    ).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    // milliseconds and Dates are fine, and so is a plainly past eta (fires at once)
    const handle = await d.addEvent(() => fired++, Date.now() + 60_000, 'svc', 'k');
    await expect(d.updateEvent(etaSeconds, 'svc', 'k')).rejects.toThrow(/seconds since the epoch/);
    expect(() => handle.reschedule(etaSeconds)).toThrow(/seconds since the epoch/);
    expect(await d.updateEvent(new Date(Date.now() + 120_000), 'svc', 'k')).toBe(true);
    await d.addEvent(() => fired++, 0);
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(fired).toBe(1);
    expect(await d.cancelEvent('svc', 'k')).toBe(true);
  });

  it('a second event with the same key replaces the first', async () => {
    const { d, clock } = make();
    const fired: string[] = [];
    await d.addEvent(() => fired.push('old'), clock.now() + 100, 'svc', 'k');
    await d.addEvent(() => fired.push('new'), clock.now() + 200, 'svc', 'k');
    await clock.advance(500);
    expect(fired).toEqual(['new']);
    // a deviation (README, "Deliberately not ported"): App Engine's ScheduledExecutor pushed both
    // events on its heap and fired both; without a key both are kept here too
    await d.addEvent(() => fired.push('first'), clock.now() + 100);
    await d.addEvent(() => fired.push('second'), clock.now() + 200);
    await clock.advance(500);
    expect(fired).toEqual(['new', 'first', 'second']);
  });

  it('reports failing events instead of losing the error', async () => {
    const { d, clock } = make();
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    await d.addEvent(
      () => {
        throw new Error('boom');
      },
      clock.now() + 10,
      'svc',
      'bad',
    );
    await d.addEvent(async () => {}, clock.now() + 10, 'svc', 'good');
    await clock.advance(10);
    expect(events.find(e => e.type === 'event-error')).toMatchObject({
      service: 'svc',
      eventId: 'bad',
      error: expect.objectContaining({ message: 'boom' }),
    });
    expect(events.find(e => e.type === 'event-fired')).toMatchObject({
      service: 'svc',
      eventId: 'good',
    });
  });

  it('runs named handlers with their payload, bounded in number and concurrency', async () => {
    const seen: unknown[] = [];
    const { d, clock } = make({
      maxEvents: 2,
      maxConcurrentEvents: 1,
      eventHandlers: { note: payload => void seen.push(payload) },
    });
    await d.addEvent({ handler: 'note', payload: { n: 1 } }, clock.now() + 10);
    await d.addEvent({ handler: 'note', payload: { n: 2 } }, clock.now() + 20, 's', 'e');
    await expect(d.addEvent(() => {}, clock.now() + 30)).rejects.toMatchObject({
      code: 'EVENT_LIMIT_REACHED',
    });
    // replacing a keyed event does not need room
    await d.addEvent({ handler: 'note', payload: { n: 3 } }, clock.now() + 20, 's', 'e');
    await clock.advance(50);
    expect(seen).toEqual([{ n: 1 }, { n: 3 }]);
  });

  it.each([
    [5, 0, undefined, undefined, /runnable must be/],
    [{ handler: 'missing' }, 0, undefined, undefined, /no event handler named "missing"/],
    [() => {}, Number.NaN, undefined, undefined, /eta must be/],
    [() => {}, 0, 'svc', undefined, /both service and eventId/],
    [() => {}, 0, '', 'x', /non-empty/],
  ])('rejects bad input (%#)', async (runnable, eta, service, eventId, message) => {
    const { d } = make();
    await expect(d.addEvent(runnable as never, eta, service, eventId)).rejects.toThrow(message);
  });

  it('drops in-memory events on close and refuses new ones', async () => {
    const store = memoryEventStore();
    const { d, clock } = make({ eventStore: store });
    let fired = 0;
    await d.addEvent(() => fired++, clock.now() + 100);
    await d.close();
    await clock.advance(1_000);
    expect(fired).toBe(0);
    await expect(d.addEvent(() => fired++, clock.now())).rejects.toMatchObject({
      code: 'DISPATCHER_CLOSED',
    });
  });

  it('long delays are re-armed in steps below the timer limit', async () => {
    const { d, clock } = make();
    let fired = false;
    await d.addEvent(() => (fired = true), clock.now() + 2 ** 31 + 5_000);
    await clock.advance(2 ** 31 - 1);
    expect(fired).toBe(false);
    await clock.advance(6_000);
    expect(fired).toBe(true);
  });
});

describe('memoryEventStore', () => {
  it('claims each pending event once and brings back expired leases', async () => {
    const store = memoryEventStore();
    const event = {
      id: 'a',
      service: undefined,
      eventId: undefined,
      eta: 100,
      handler: 'h',
      payload: 1,
    };
    await store.put(event);
    expect(await store.claim('a', 99, 1_000)).toBe(false); // eta moved
    expect(await store.claim('a', 100, 1_000)).toBe(true);
    expect(await store.claim('a', 100, 1_000)).toBe(false);
    expect(await store.claim('a', 100, 1_000, true)).toBe(true); // sent again (answer lost)
    expect(await store.claim('a', 100, 1_001, true)).toBe(false); // not ours
    expect(await store.reschedule('a', 5)).toBe(false); // running, not pending
    expect(await store.load(500, 10)).toEqual([]);
    expect(await store.load(1_000, 10)).toEqual([{ ...event, eta: 1_000 }]);
    expect(await store.remove('a')).toBe(true);
    expect(await store.remove('a')).toBe(false);
  });
});
