import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, exponentialBackoff } from '@x/resilience';
import type { Backend, InstanceExit, InstanceRequest } from '../backend.js';
import { inProcess } from '../backends/inProcess.js';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from '../createDispatcher.js';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import { responseText } from '../responseTuple.js';
import type { ResponseTuple } from '../types.js';

const open: Dispatcher[] = [];
function make(options: DispatcherOptions): Dispatcher {
  const d = createDispatcher(options);
  open.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(d => d.close({ drainTimeoutMs: 0 })));
});

/** A backend whose requests wait until released. */
function heldBackend() {
  const holds: Array<() => void> = [];
  const backend = inProcess(
    (req: InstanceRequest) =>
      new Promise(resolve => holds.push(() => resolve({ body: req.instance.instance }))),
  );
  return { backend, holds, releaseAll: () => holds.splice(0).forEach(h => h()) };
}

const ready = (d: Dispatcher, module = 'default') =>
  d.getInstances(module, 'v1').filter(i => i.state === 'ready').length;

describe('automatic scaling on a fake clock', () => {
  it('scales up under concurrent load and back down to zero when idle', async () => {
    const clock = new ManualClock();
    const { backend, holds, releaseAll } = heldBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: {
              backend,
              maxConcurrentRequests: 2,
              maxPendingLatencyMs: 30_000,
              scaling: {
                kind: 'automatic',
                minIdleInstances: 0,
                scaleToZero: true,
                minPendingLatencyMs: 100,
                windowMs: 10_000,
                adjustIntervalMs: 1_000,
                minMsBetweenQuits: 1_000,
                maxInstances: 10,
              },
            },
          },
        },
      },
    });
    const scale: DispatcherEvent[] = [];
    d.on(e => e.type === 'scale' && scale.push(e));
    await d.start();
    expect(ready(d)).toBe(0);

    const requests: Array<Promise<ResponseTuple>> = [];
    for (let i = 0; i < 10; i++) requests.push(d.addRequest({ url: '/' }));
    await clock.advance(0);
    expect(ready(d)).toBe(1); // nothing ran: a cold start at once
    expect(holds).toHaveLength(2);
    await clock.advance(100); // minPendingLatencyMs later, enough instances for the waiting requests
    expect(ready(d)).toBe(5);
    expect(holds).toHaveLength(10);
    await clock.advance(1_000);
    expect(ready(d)).toBe(5);
    expect(d.stats().versions[0]).toMatchObject({ outstanding: 10, waiting: 0, coldStarts: 5 });

    releaseAll();
    const served = new Set((await Promise.all(requests)).map(responseText));
    expect(served.size).toBe(5);

    // still inside the window: peak concurrency 10 keeps 5 instances
    await clock.advance(5_000);
    expect(ready(d)).toBe(5);
    // after the window, one quit per minMsBetweenQuits, down to zero
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) {
      await clock.advance(1_000);
      counts.push(d.getInstances('default', 'v1').length);
    }
    expect(counts.at(-1)).toBe(0);
    expect(counts).toContain(3); // one instance at a time
    expect(counts).toEqual([...counts].sort((a, b) => b - a)); // never back up
    expect(scale.some(e => e.type === 'scale' && e.to === 0 && /scale to 0/.test(e.reason))).toBe(
      true,
    );

    // traffic again: a cold start from zero
    const again = d.addRequest({ url: '/' });
    await clock.advance(0);
    releaseAll();
    expect((await again).status).toBe(200);
  });

  it('keeps minIdleInstances warm and trims idle ones above maxIdleInstances', async () => {
    const clock = new ManualClock();
    const { backend, releaseAll } = heldBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: {
              backend,
              maxConcurrentRequests: 1,
              scaling: {
                kind: 'automatic',
                minIdleInstances: 1,
                maxIdleInstances: 1,
                windowMs: 5_000,
                minMsBetweenQuits: 500,
                adjustIntervalMs: 500,
              },
            },
          },
        },
      },
    });
    await d.start();
    expect(ready(d)).toBe(1); // the warm idle instance
    const requests = [
      d.addRequest({ url: '/' }),
      d.addRequest({ url: '/' }),
      d.addRequest({ url: '/' }),
    ];
    await clock.advance(600);
    expect(ready(d)).toBe(4); // 3 required + 1 idle
    releaseAll();
    await Promise.all(requests);
    for (let i = 0; i < 20; i++) await clock.advance(500);
    expect(ready(d)).toBe(1);
  });

  it('honours maxPendingLatencyMs with NO_CAPACITY and a retry hint', async () => {
    const clock = new ManualClock();
    const { backend, releaseAll } = heldBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: {
              backend,
              maxConcurrentRequests: 1,
              maxPendingLatencyMs: 500,
              scaling: { kind: 'automatic', minInstances: 1, maxInstances: 1, minIdleInstances: 0 },
            },
          },
        },
      },
    });
    await d.start();
    const first = d.addRequest({ url: '/' });
    const second = d.addRequest({ url: '/' }).catch(e => e);
    await clock.advance(499);
    expect(d.stats().versions[0]!.waiting).toBe(1);
    await clock.advance(1);
    const error = await second;
    expect(error).toMatchObject({ code: 'NO_CAPACITY', dimension: 'pending-latency', status: 503 });
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(1_000);
    releaseAll();
    await first;
  });

  it('a deadline shorter than maxPendingLatencyMs gives DEADLINE_EXCEEDED', async () => {
    const clock = new ManualClock();
    const { backend, releaseAll } = heldBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: { backend, maxConcurrentRequests: 1, scaling: { kind: 'manual', instances: 1 } },
          },
        },
      },
    });
    await d.start();
    const first = d.addRequest({ url: '/' });
    const second = d.addRequest({ url: '/', timeoutMs: 200 }).catch(e => e);
    await clock.advance(200);
    expect(await second).toMatchObject({ code: 'DEADLINE_EXCEEDED', status: 504 });
    releaseAll();
    await first;
  });
});

describe('basic scaling on a fake clock', () => {
  it('starts instances on demand and stops them after idleTimeoutMs', async () => {
    const clock = new ManualClock();
    const { backend, holds, releaseAll } = heldBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: {
              backend,
              maxConcurrentRequests: 1,
              scaling: { kind: 'basic', maxInstances: 3, idleTimeoutMs: 5_000 },
            },
          },
        },
      },
    });
    await d.start();
    expect(d.getInstances('default', 'v1').map(i => i.state)).toEqual([
      'stopped',
      'stopped',
      'stopped',
    ]);
    const one = d.addRequest({ url: '/' });
    await clock.advance(0);
    expect(d.getInstances('default', 'v1').map(i => i.state)).toEqual([
      'ready',
      'stopped',
      'stopped',
    ]);
    const more = [d.addRequest({ url: '/' }), d.addRequest({ url: '/' })];
    await clock.advance(0);
    expect(ready(d)).toBe(3);
    expect(holds).toHaveLength(3);
    releaseAll();
    await Promise.all([one, ...more]);
    await clock.advance(4_000);
    expect(ready(d)).toBe(3);
    await clock.advance(2_000);
    expect(d.getInstances('default', 'v1').map(i => i.state)).toEqual([
      'stopped',
      'stopped',
      'stopped',
    ]);
    // an addressed basic instance starts on demand
    const addressed = d.addRequest({ url: '/', instance: '2' });
    await clock.advance(0);
    releaseAll();
    expect(responseText(await addressed)).toBe('2');
    expect(d.getInstances('default', 'v1').map(i => i.state)).toEqual([
      'stopped',
      'stopped',
      'ready',
    ]);
  });
});

describe('restarts and health on a fake clock', () => {
  function killableBackend() {
    const exits: Array<(exit: InstanceExit) => void> = [];
    let created = 0;
    const backend: Backend = {
      kind: 'test',
      maxInstances: Infinity,
      lifecycleRequests: false,
      create() {
        const pid = 1000 + ++created;
        return {
          origin: undefined,
          pid,
          port: undefined,
          start: async () => {},
          handle: () => ({ body: String(pid) }),
          stop: async () => {},
          onExit: listener => void exits.push(listener),
        };
      },
    };
    return { backend, exits, created: () => created };
  }

  it('restarts a dead instance with exponential backoff, then gives up', async () => {
    const clock = new ManualClock();
    const { backend, exits, created } = killableBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: {
              backend,
              restart: {
                backoff: exponentialBackoff({ initialMs: 100, maxMs: 10_000, jitter: 'none' }),
                maxRestarts: 3,
              },
            },
          },
        },
      },
    });
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    await d.start();
    expect(d.getInstances('default', 'v1')[0]).toMatchObject({ pid: 1001, state: 'ready' });
    const delays: number[] = [];
    for (const expected of [100, 200, 400]) {
      exits.at(-1)!({ code: 1, signal: null });
      expect(d.getInstances('default', 'v1')[0]!.state).toBe('failed');
      const before = created();
      await clock.advance(expected - 1);
      expect(created()).toBe(before);
      await clock.advance(1);
      expect(created()).toBe(before + 1);
      expect(d.getInstances('default', 'v1')[0]).toMatchObject({
        state: 'ready',
        pid: 1000 + created(),
      });
      const scheduled = events.filter(e => e.type === 'instance-restart-scheduled').at(-1);
      delays.push(scheduled?.type === 'instance-restart-scheduled' ? scheduled.delayMs : -1);
    }
    expect(delays).toEqual([100, 200, 400]);
    expect(events.filter(e => e.type === 'instance-died')).toHaveLength(3);
    exits.at(-1)!({ code: 1, signal: null });
    expect(events.at(-1)).toMatchObject({ type: 'instance-gave-up', restarts: 3 });
    await clock.advance(60_000);
    expect(created()).toBe(4);
    // requests to the dead version wait, then fail with NO_CAPACITY
    const error = d.addRequest({ url: '/' }).catch(e => e);
    await clock.advance(10_000);
    expect(await error).toMatchObject({ code: 'NO_CAPACITY' });
  });

  it('forgets the restart streak after resetAfterMs of uptime', async () => {
    const clock = new ManualClock();
    const { backend, exits } = killableBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: {
              backend,
              restart: {
                backoff: exponentialBackoff({ initialMs: 100, jitter: 'none' }),
                maxRestarts: 5,
                resetAfterMs: 10_000,
              },
            },
          },
        },
      },
    });
    const delays: number[] = [];
    d.on(e => e.type === 'instance-restart-scheduled' && delays.push(e.delayMs));
    await d.start();
    exits.at(-1)!({ code: 1, signal: null });
    await clock.advance(100);
    exits.at(-1)!({ code: 1, signal: null });
    await clock.advance(200);
    await clock.advance(10_000);
    exits.at(-1)!({ code: 1, signal: null });
    expect(delays).toEqual([100, 200, 100]);
  });

  it('takes unhealthy instances out of rotation and restarts them past restartThreshold', async () => {
    const clock = new ManualClock();
    const healthy: Record<string, boolean> = { '0': true, '1': true };
    const { backend, created } = killableBackend();
    const d = make({
      clock,
      modules: {
        default: {
          versions: {
            v1: {
              backend,
              scaling: { kind: 'manual', instances: 2 },
              healthCheck: {
                check: i => healthy[i.instance]!,
                intervalMs: 1_000,
                unhealthyThreshold: 2,
                healthyThreshold: 2,
                restartThreshold: 5,
              },
            },
          },
        },
      },
    });
    const events: string[] = [];
    d.on(e => events.push(`${e.type}${'instance' in e ? ` ${e.instance}` : ''}`));
    await d.start();
    const pidOf1 = d.getInstances('default', 'v1')[1]!.pid;
    healthy['0'] = false;
    await clock.advance(1_000);
    expect(d.getInstances('default', 'v1')[0]!.healthy).toBe(true);
    await clock.advance(1_000);
    expect(d.getInstances('default', 'v1')[0]!.healthy).toBe(false);
    expect(events).toContain('instance-unhealthy 0');
    for (let i = 0; i < 6; i++)
      expect(responseText(await d.addRequest({ url: '/' }))).toBe(String(pidOf1));
    healthy['0'] = true;
    await clock.advance(2_000);
    expect(events).toContain('instance-healthy 0');
    const pids = new Set<string>();
    for (let i = 0; i < 30; i++) pids.add(responseText(await d.addRequest({ url: '/' })));
    expect(pids.size).toBe(2);
    healthy['0'] = false;
    const before = created();
    await clock.advance(5_000);
    await clock.advance(1_000); // restart backoff
    expect(created()).toBe(before + 1);
    expect(events).toContain('instance-restart-scheduled 0');
  });
});
