// Retry schedules on a ManualClock with an in-memory transport: deterministic, no sockets.
import { ManualClock, RetryBudget, constantBackoff } from '@x/resilience';
import { describe, expect, test } from 'vitest';
import { WorkerRpcError, isWorkerRpcError } from './errors.js';
import { Kind, idHex } from './protocol.js';
import type { Channel, ChannelEvents, Transport } from './transport.js';
import { createWorkerConnection } from './workerConnection.js';

type Behaviour = 'ok' | 'fail' | 'silent' | 'overloaded' | 'late';

/** `late` answers after 300 ms on `clock`. */
function scriptedTransport(behaviours: Record<string, Behaviour>, clock?: ManualClock) {
  const sends: { endpoint: string; id: string; attempt: number; budget: number }[] = [];
  const cancels: { endpoint: string; attempt: number }[] = [];
  const transport: Transport = {
    name: 'scripted',
    protocol: 'wrpc/1',
    open(address: string, events: ChannelEvents): Channel {
      const channel: Channel = {
        address,
        send(request) {
          sends.push({
            endpoint: address,
            id: idHex(request.id),
            attempt: request.attempt,
            budget: request.budgetMs(),
          });
          const id = request.id;
          queueMicrotask(() => {
            const behaviour = behaviours[address];
            if (behaviour === 'fail')
              events.fail(channel, id, new WorkerRpcError('UNAVAILABLE', `${address} refused`));
            else if (behaviour === 'overloaded')
              events.reply(channel, id, {
                kind: Kind.ERR,
                body: Buffer.from(
                  JSON.stringify({ code: 'OVERLOADED', message: 'busy', retryable: true }),
                ),
                codec: 'json',
                encoding: '',
                compressed: false,
                credit: 5,
              });
            else if (behaviour === 'late')
              clock!.setTimeout(
                () =>
                  events.reply(channel, id, {
                    kind: Kind.RES,
                    body: Buffer.from(JSON.stringify(address)),
                    codec: 'json',
                    encoding: '',
                    compressed: false,
                    credit: 5,
                  }),
                300,
              );
            else if (behaviour === 'ok')
              events.reply(channel, id, {
                kind: Kind.RES,
                body: Buffer.from(JSON.stringify(address)),
                codec: 'json',
                encoding: '',
                compressed: false,
                credit: 5,
              });
          });
          return undefined;
        },
        cancel(request) {
          cancels.push({ endpoint: address, attempt: request.attempt });
        },
        close: async () => {},
      };
      queueMicrotask(() => events.state(channel, 'up'));
      return channel;
    },
    close: async () => {},
  };
  return { transport, sends, cancels };
}

const tick = () => new Promise(r => setImmediate(r));

describe('retry schedule', () => {
  test('same id, next attempt number, another endpoint, backoff on the clock, only for idempotent calls', async () => {
    const clock = new ManualClock();
    const { transport, sends } = scriptedTransport({ a: 'fail', b: 'overloaded', c: 'ok' });
    const conn = createWorkerConnection({
      addresses: 'a,b,c',
      transport,
      clock,
      balancer: 'round-robin',
      retry: { maxAttempts: 3, backoff: constantBackoff(100) },
      methods: { get: { idempotent: true } },
    });
    await tick();
    const call = conn.invoke('get');
    await tick();
    expect(sends).toHaveLength(1);
    await clock.advance(99);
    expect(sends).toHaveLength(1);
    await clock.advance(1);
    await tick();
    expect(sends).toHaveLength(2);
    await clock.advance(100);
    expect(await call).toBe('c');
    expect(sends.map(s => [s.endpoint, s.attempt])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 2],
    ]);
    expect(new Set(sends.map(s => s.id)).size).toBe(1);
    expect(sends[0]!.budget).toBe(10_000);
    expect(sends[2]!.budget).toBe(9_800);

    sends.length = 0;
    const plain = conn.invoke('put').catch(e => e);
    await tick();
    const error = await plain;
    expect(isWorkerRpcError(error, 'UNAVAILABLE')).toBe(true);
    expect(sends).toHaveLength(1);
    await conn.close();
  });

  test('gives up at maxAttempts, when the next sleep would pass the deadline, and when the budget is spent', async () => {
    const clock = new ManualClock();
    const { transport, sends } = scriptedTransport({ a: 'fail', b: 'fail' });
    const conn = createWorkerConnection({
      addresses: 'a,b',
      transport,
      clock,
      timeoutMs: 1_000,
      retry: { maxAttempts: 4, backoff: constantBackoff(400), budget: false },
      methods: { get: { idempotent: true } },
    });
    await tick();
    const call = conn.invoke('get').catch(e => e);
    for (let i = 0; i < 5; i++) {
      await tick();
      await clock.advance(400);
    }
    const error = (await call) as WorkerRpcError;
    expect(error.code).toBe('UNAVAILABLE');
    expect(sends).toHaveLength(3); // 0 ms, 400 ms, 800 ms: a fourth at 1 200 ms would pass the deadline
    await conn.close();

    const broke = scriptedTransport({ a: 'fail' });
    const stingy = createWorkerConnection({
      addresses: 'a',
      transport: broke.transport,
      clock,
      retry: {
        maxAttempts: 5,
        backoff: constantBackoff(1),
        budget: new RetryBudget({ percentCanRetry: 0, minRetriesPerSec: 0, clock }),
      },
      methods: { get: { idempotent: true } },
    });
    await tick();
    const spent = (await stingy.invoke('get').catch(e => e)) as WorkerRpcError;
    expect(spent.code).toBe('UNAVAILABLE');
    expect(spent.message).toContain('retry budget exhausted');
    expect(broke.sends).toHaveLength(1);
    await stingy.close();
  });

  test('attempt timeouts re-send (toto auto_retry) and the first reply wins', async () => {
    const clock = new ManualClock();
    const { transport, sends } = scriptedTransport({ a: 'silent', b: 'ok' });
    const conn = createWorkerConnection({
      addresses: 'a,b',
      transport,
      clock,
      balancer: 'round-robin',
      retry: { maxAttempts: 2, attemptTimeoutMs: 250, backoff: constantBackoff(0) },
      methods: { get: { idempotent: true } },
    });
    await tick();
    const call = conn.invoke('get');
    await tick();
    await clock.advance(250);
    await tick();
    expect(await call).toBe('b');
    expect(sends.map(s => [s.endpoint, s.attempt])).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
    // the attempt timers were cleared: only the timer the call deadlines share (a TimerQueue) is
    // left, and it fires empty once and is not re-armed: nothing of the call is left on the clock
    expect(clock.pending).toBe(1);
    await clock.advance(10_000);
    expect(clock.pending).toBe(0);
    await conn.close();
  });

  test('a late reply to a timed-out attempt wins, and the retry still running is cancelled', async () => {
    const clock = new ManualClock();
    const { transport, sends, cancels } = scriptedTransport({ a: 'late', b: 'silent' }, clock);
    const conn = createWorkerConnection({
      addresses: 'a,b',
      transport,
      clock,
      balancer: 'round-robin',
      retry: { maxAttempts: 2, attemptTimeoutMs: 250, backoff: constantBackoff(0) },
      methods: { get: { idempotent: true } },
    });
    await tick();
    const call = conn.invoke('get');
    await tick();
    await clock.advance(250); // attempt 0 on a timed out: attempt 1 goes to b
    await tick();
    expect(sends.map(s => [s.endpoint, s.attempt])).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
    await clock.advance(50); // a answers attempt 0 at 300 ms
    expect(await call).toBe('a');
    expect(cancels).toEqual([{ endpoint: 'b', attempt: 1 }]);
    expect(conn.inFlight).toBe(0);
    expect(clock.pending).toBe(1); // the attempt timers were cleared; the shared deadline timer is left
    await clock.advance(10_000); // it fires empty, nothing is re-armed
    expect(clock.pending).toBe(0);
    await conn.close();
  });

  test('retry and giveUp events name the method; per-call maxAttempts; endpoint counters', async () => {
    const clock = new ManualClock();
    const { transport, sends } = scriptedTransport({ a: 'fail', b: 'fail' });
    const conn = createWorkerConnection({
      addresses: 'a,b',
      transport,
      clock,
      balancer: 'round-robin',
      retry: { maxAttempts: 3, backoff: constantBackoff(0), budget: false },
      methods: { get: { idempotent: true } },
    });
    const events: unknown[] = [];
    conn.onEvent(e => {
      if (e.type !== 'endpoint')
        events.push([e.type, e.method, 'attempt' in e ? e.attempt : e.attempts]);
    });
    await tick();
    const error = (await conn.invoke('get').catch(e => e)) as WorkerRpcError;
    expect(error.code).toBe('UNAVAILABLE');
    expect(sends).toHaveLength(3);
    expect(events).toEqual([
      ['retry', 'get', 1],
      ['retry', 'get', 2],
      ['giveUp', 'get', 3],
    ]);
    sends.length = 0;
    await conn.invoke('get', undefined, { maxAttempts: 2 }).catch(e => e);
    expect(sends).toHaveLength(2);
    const stats = conn.endpoints();
    expect(stats.map(e => e.requests).reduce((a, b) => a + b)).toBe(5);
    expect(stats.map(e => e.failures).reduce((a, b) => a + b)).toBe(5);
    expect(stats.every(e => e.inFlight === 0)).toBe(true);
    await conn.close();
  });

  test('close({ drainMs }) waits on the clock for pending calls and ends as soon as the last one settles', async () => {
    const clock = new ManualClock();
    const { transport } = scriptedTransport({ a: 'silent' });
    const conn = createWorkerConnection({ addresses: 'a', transport, clock });
    await tick();
    const short = conn.invoke('get', undefined, { timeoutMs: 100 }).catch(e => e);
    await tick();
    let closed = false;
    const closing = conn.close({ drainMs: 10_000 }).then(() => (closed = true));
    await clock.advance(99);
    await tick();
    expect(closed).toBe(false);
    await clock.advance(1); // the only pending call times out: the drain ends now, not at 10 s
    await closing;
    expect(((await short) as WorkerRpcError).code).toBe('TIMEOUT');
    await clock.advance(10_000); // the shared deadline timer fires empty, nothing is re-armed
    expect(clock.pending).toBe(0);

    const stuck = scriptedTransport({ a: 'silent' });
    const conn2 = createWorkerConnection({
      addresses: 'a',
      transport: stuck.transport,
      clock,
      timeoutMs: -1,
    });
    await tick();
    const never = conn2.invoke('get').catch(e => e);
    await tick();
    let closed2 = false;
    const closing2 = conn2.close({ drainMs: 500 }).then(() => (closed2 = true));
    await clock.advance(499);
    await tick();
    expect(closed2).toBe(false);
    await clock.advance(1);
    await closing2;
    expect(((await never) as WorkerRpcError).code).toBe('CLOSED');
  });
});
