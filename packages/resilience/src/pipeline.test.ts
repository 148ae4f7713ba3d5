import { describe, expect, it } from 'vitest';
import { ConsecutiveBreaker } from 'cockatiel';
import { ManualClock } from './manualClock.js';
import { pipeline, wrap } from './pipeline.js';
import { retry } from './retry.js';
import { circuitBreaker } from './circuitBreaker.js';
import { timeout } from './timeout.js';
import { bulkhead } from './bulkhead.js';
import { fallback } from './fallback.js';
import { constantBackoff } from './backoff.js';
import { PolicyBase } from './internal/policyBase.js';
import type { PolicyContext, PolicyEvent, Task } from './policy.js';

/** A pass-through policy that records when it is entered and left. */
class Recorder extends PolicyBase {
  constructor(
    private readonly name: string,
    private readonly log: string[],
  ) {
    super();
  }
  async run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    this.log.push(`enter ${this.name}`);
    try {
      return await task(context);
    } finally {
      this.log.push(`leave ${this.name}`);
    }
  }
}

describe('pipeline', () => {
  it('runs the policies outermost first', async () => {
    const log: string[] = [];
    const policy = pipeline(new Recorder('a', log), new Recorder('b', log), new Recorder('c', log));
    await expect(
      policy.execute(() => {
        log.push('task');
        return 7;
      }),
    ).resolves.toBe(7);
    expect(log).toEqual(['enter a', 'enter b', 'enter c', 'task', 'leave c', 'leave b', 'leave a']);
  });

  it('order matters: retry outside a breaker retries into it, fallback outermost catches everything', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ strategy: new ConsecutiveBreaker(2), clock });
    let calls = 0;
    const policy = pipeline(
      fallback(e => `fallback: ${(e as { code?: string }).code ?? (e as Error).message}`),
      retry({ maxRetries: 5, backoff: constantBackoff(0), clock }),
      breaker,
    );
    const result = await policy.execute(() => {
      calls++;
      throw new Error('down');
    });
    // two failures open the breaker; the third try meets CIRCUIT_OPEN, which is never retried
    expect(calls).toBe(2);
    expect(result).toBe('fallback: CIRCUIT_OPEN');
  });

  it('delivers the events of every layer through onEvent', async () => {
    const clock = new ManualClock();
    const policy = wrap(
      retry({ maxRetries: 3, backoff: constantBackoff(0), clock }),
      circuitBreaker({ key: 'svc', strategy: new ConsecutiveBreaker(2), clock }),
    );
    const events: PolicyEvent[] = [];
    const stop = policy.onEvent(e => events.push(e));
    await policy.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    expect(events.map(e => e.type)).toEqual(['retry', 'stateChange', 'retry', 'reject', 'giveUp']);
    expect(events[1]).toEqual({ type: 'stateChange', key: 'svc', from: 'closed', to: 'open' });
    stop();
    await policy.execute(() => 1).catch(() => {});
    expect(events).toHaveLength(5);
  });

  it('layers share one context: an inner layer sees the outer deadline', async () => {
    const clock = new ManualClock(1000);
    let deadline = 0;
    await pipeline(timeout(250, { clock }), bulkhead(1, 0, { clock })).execute(ctx => {
      deadline = ctx.deadline;
    });
    expect(deadline).toBe(1250);
  });

  it('a caller abort rejects ABORTED', async () => {
    const controller = new AbortController();
    const p = pipeline(bulkhead(1), retry()).execute(
      () => new Promise(() => {}),
      controller.signal,
    );
    controller.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    const already = new AbortController();
    already.abort();
    let ran = false;
    await expect(
      pipeline(bulkhead(1)).execute(() => (ran = true), already.signal),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(ran).toBe(false);
  });

  it('needs at least one policy', () => {
    expect(() => pipeline()).toThrow(RangeError);
  });
});
