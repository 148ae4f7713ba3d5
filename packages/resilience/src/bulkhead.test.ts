import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { bulkhead, Bulkhead } from './bulkhead.js';
import { timeout } from './timeout.js';
import { pipeline } from './pipeline.js';
import { BulkheadFullError } from './errors.js';
import type { PolicyEvent } from './policy.js';

function gate<T = string>() {
  let release!: (value: T) => void;
  const promise = new Promise<T>(res => (release = res));
  return { promise, release, task: () => promise };
}

function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    value => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

const tick = () => new Promise<void>(resolve => setImmediate(resolve));

describe('bulkhead', () => {
  it('limit 2 queue 1: the 3rd waits, the 4th rejects BULKHEAD_FULL', async () => {
    const b = bulkhead(2, 1, { key: 'svc' });
    const events: PolicyEvent[] = [];
    b.onEvent(e => events.push(e));
    const g = [gate(), gate(), gate()];
    let thirdStarted = false;
    const c1 = b.execute(g[0]!.task);
    const c2 = b.execute(g[1]!.task);
    const c3 = b.execute(() => {
      thirdStarted = true;
      return g[2]!.promise;
    });
    expect([b.running, b.queued]).toEqual([2, 1]);
    const fourth = await b.execute(() => 'never').catch((e: unknown) => e);
    expect(fourth).toBeInstanceOf(BulkheadFullError);
    expect(fourth).toMatchObject({ code: 'BULKHEAD_FULL', limit: 2, queue: 1, key: 'svc' });
    expect(events).toEqual([{ type: 'reject', reason: 'bulkhead', key: 'svc' }]);
    expect(thirdStarted).toBe(false);

    g[0]!.release('one');
    await c1;
    await tick();
    expect(thirdStarted).toBe(true);
    expect([b.running, b.queued]).toEqual([2, 0]);
    g[1]!.release('two');
    g[2]!.release('three');
    await expect(Promise.all([c2, c3])).resolves.toEqual(['two', 'three']);
    expect([b.running, b.queued]).toEqual([0, 0]);
  });

  it('defaults to no queue', async () => {
    const b = bulkhead(1);
    const g = gate();
    const first = b.execute(g.task);
    await expect(b.execute(() => 1)).rejects.toMatchObject({ code: 'BULKHEAD_FULL', queue: 0 });
    g.release('x');
    await first;
    await expect(b.execute(() => 1)).resolves.toBe(1);
  });

  it('releases the slot when the task throws synchronously or rejects', async () => {
    const b = bulkhead(1);
    await expect(
      b.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(b.execute(() => Promise.reject(new Error('async')))).rejects.toThrow('async');
    expect(b.running).toBe(0);
    await expect(b.execute(() => 'ok')).resolves.toBe('ok');
  });

  it('grants queued calls in FIFO order', async () => {
    const b = bulkhead(1, 10);
    const order: number[] = [];
    const first = gate();
    const running = [b.execute(first.task)];
    for (let i = 1; i <= 5; i++)
      running.push(b.execute(() => void order.push(i) as unknown as string));
    expect(b.queued).toBe(5);
    first.release('go');
    await Promise.all(running);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect([b.running, b.queued]).toEqual([0, 0]);
  });

  it('a queued call whose signal aborts leaves the queue and does not starve the others', async () => {
    const b = bulkhead(1, 2);
    const first = gate();
    const c1 = b.execute(first.task);
    const controller = new AbortController();
    let abortedRan = false;
    const aborted = track(
      b.execute(() => {
        abortedRan = true;
        return 'x';
      }, controller.signal),
    );
    const c3 = b.execute(() => 'third');
    expect(b.queued).toBe(2);
    controller.abort();
    await tick();
    expect(aborted.error).toMatchObject({ code: 'ABORTED' });
    expect(b.queued).toBe(1);
    // the freed queue place can be taken again
    const c4 = b.execute(() => 'fourth');
    expect(b.queued).toBe(2);
    first.release('first');
    await expect(Promise.all([c1, c3, c4])).resolves.toEqual(['first', 'third', 'fourth']);
    expect(abortedRan).toBe(false);
    expect([b.running, b.queued]).toEqual([0, 0]);
  });

  it('many aborted waiters never block the slot (cockatiel 3.x starvation)', async () => {
    const b = bulkhead(1, 100);
    const first = gate();
    const c1 = b.execute(first.task);
    const controllers = Array.from({ length: 50 }, () => new AbortController());
    const abandoned = controllers.map(c =>
      b.execute(() => 'abandoned', c.signal).catch((e: unknown) => e),
    );
    for (const c of controllers) c.abort();
    await Promise.all(abandoned);
    expect(b.queued).toBe(0);
    const last = b.execute(() => 'last');
    first.release('first');
    await expect(Promise.all([c1, last])).resolves.toEqual(['first', 'last']);
    expect(b.running).toBe(0);
  });

  it('queueTimeoutMs rejects a call that waited too long', async () => {
    const clock = new ManualClock();
    const b = new Bulkhead({ limit: 1, queue: 5, queueTimeoutMs: 100, clock });
    const first = gate();
    const c1 = b.execute(first.task);
    const waiting = track(b.execute(() => 'late'));
    await clock.advance(99);
    expect(waiting.settled).toBe(false);
    await clock.advance(1);
    expect(waiting.error).toBeInstanceOf(BulkheadFullError);
    expect(b.queued).toBe(0);
    first.release('done');
    await c1;
    expect(b.running).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('a queued call is granted before its queue timeout and the timer is cleared', async () => {
    const clock = new ManualClock();
    const b = new Bulkhead({ limit: 1, queue: 1, queueTimeoutMs: 100, clock });
    const first = gate();
    const c1 = b.execute(first.task);
    const waiting = b.execute(() => 'granted');
    expect(clock.pending).toBe(1);
    first.release('done');
    await expect(Promise.all([c1, waiting])).resolves.toEqual(['done', 'granted']);
    expect(clock.pending).toBe(0);
  });

  it('a deadline aborts a queued call', async () => {
    const clock = new ManualClock();
    const b = bulkhead(1, 1, { clock });
    const first = gate();
    void b.execute(first.task);
    const policy = pipeline(timeout(50, { clock }), b);
    let ran = false;
    const waiting = track(
      policy.execute(() => {
        ran = true;
        return 1;
      }),
    );
    await clock.advance(50);
    expect(waiting.error).toMatchObject({ code: 'TIMEOUT' });
    expect(b.queued).toBe(0);
    first.release('x');
    await tick();
    expect(ran).toBe(false);
    expect(b.running).toBe(0);
  });

  it('tryAcquire and release', () => {
    const b = bulkhead(2);
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
    expect(b.running).toBe(2);
    b.release();
    expect(b.running).toBe(1);
  });

  it('throws RangeError on bad limits', () => {
    expect(() => bulkhead(0)).toThrow(RangeError);
    expect(() => bulkhead(1.5)).toThrow(RangeError);
    expect(() => bulkhead(Number.NaN)).toThrow(RangeError);
    expect(() => bulkhead(1, -1)).toThrow(RangeError);
    expect(() => bulkhead(1, 0.5)).toThrow(RangeError);
    expect(() => bulkhead(1, Infinity)).not.toThrow();
  });
});

describe('Bulkhead.acquire with a plain signal', () => {
  it('queues behind a held slot and leaves the queue when its signal aborts', async () => {
    const b = bulkhead(1, 1);
    expect(b.acquire()).toBeUndefined();
    const controller = new AbortController();
    const wait = b.acquire(controller.signal)!;
    expect(b.queued).toBe(1);
    controller.abort(new Error('gave up'));
    await expect(wait).rejects.toThrow('gave up');
    expect(b.queued).toBe(0);
    const granted = b.acquire(new AbortController().signal)!;
    b.release();
    await expect(granted).resolves.toBeUndefined();
    expect(b.running).toBe(1);
    b.release();
    expect(b.running).toBe(0);
  });
});
