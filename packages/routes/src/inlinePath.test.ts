import { describe, expect, it } from 'vitest';
import type { Delivery } from './entrypoint.js';
import type { Outcome } from './outcome.js';
import { Route, route } from './route.js';
import { RouteWorker } from './routeWorker.js';
import { Runner } from './runner.js';
import { json } from './translator.js';
import { deferred } from './test/helpers.js';

// A message whose steps stay synchronous settles inside startRoute (no promise per step): these
// tests pin that the fast path keeps the behaviour of the promise path it shortcuts.
describe('Route: the synchronous path', () => {
  it('a synchronous target settles inside startRoute: attempt and outcome events, slot freed, nothing in flight', async () => {
    const r = route({
      translators: [(x: unknown) => (x as number) * 2],
      target: (x: number) => x + 1,
    });
    const runner = new Runner({ routes: [r], maxWorkers: 1 });
    await runner.start();
    const events: string[] = [];
    r.onEvent(e => events.push(e.type));
    const pending = r.startRoute(null, 20);
    // settled already: its events fired and its slot and task are released before we await
    expect(events).toEqual(['attempt', 'outcome']);
    expect(r.inFlight).toBe(0);
    expect(r.running).toBe(0);
    expect(await pending).toEqual({ kind: 'success', value: 41, attempts: 1 });
    // with one worker slot, 100 messages in a row each get it back
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => r.startRoute(i, i)));
    expect(outcomes.every(o => o.kind === 'success')).toBe(true);
    await runner.stop();
  });

  it('a synchronous throw in the target or the translator is the same failure as an asynchronous one', async () => {
    const sync = route({
      target: () => {
        throw new Error('boom');
      },
    });
    const async_ = route({
      target: async () => {
        throw new Error('boom');
      },
    });
    const a = await sync.startRoute(null, 1);
    const b = await async_.startRoute(null, 1);
    expect(a).toMatchObject({ kind: 'failure', terminal: true, reason: 'no-backoff', attempts: 1 });
    expect(b).toMatchObject({ kind: 'failure', terminal: true, reason: 'no-backoff', attempts: 1 });
    expect((a as { error: Error }).error.message).toBe('boom');
    const bad = route({ translators: [json()], target: (x: unknown) => x });
    expect(await bad.startRoute(null, '{')).toMatchObject({
      kind: 'failure',
      reason: 'translation',
    });
  });

  it('a synchronous target that kills its route: its message settles once (it returned first), the next is refused', async () => {
    const outcomes: string[] = [];
    const r = new Route<number, number, number>({
      target: (x: number) => {
        void r.kill();
        return x;
      },
    });
    r.onEvent(e => {
      if (e.type === 'outcome') outcomes.push(e.outcome.kind);
    });
    expect(await r.startRoute('e1', 1)).toMatchObject({ kind: 'success', value: 1 });
    await new Promise(resolve => setImmediate(resolve));
    expect(outcomes).toEqual(['success']);
    expect(r.inFlight).toBe(0);
    await expect(r.startRoute('e2', 2)).rejects.toMatchObject({ code: 'ROUTE_STOPPED' });
  });

  it('an overridden runWorker or spawnWorker is still called, and so is a worker class overriding run()', async () => {
    const calls: string[] = [];
    class CountingRoute extends Route<number, number, number> {
      override runWorker(delivery: Delivery, worker: RouteWorker<number, number, number>) {
        calls.push('runWorker');
        return super.runWorker(delivery, worker);
      }
      override spawnWorker(worker: RouteWorker<number, number, number>) {
        calls.push('spawnWorker');
        return super.spawnWorker(worker);
      }
    }
    class RunWorker extends RouteWorker<number, number, number> {
      override run(): Promise<this> {
        calls.push('run');
        return super.run();
      }
    }
    const r = new CountingRoute({ target: (x: number) => x + 1, workerClass: RunWorker });
    expect(await r.startRoute(null, 1)).toMatchObject({ kind: 'success', value: 2 });
    expect(calls).toEqual(['runWorker', 'spawnWorker', 'run']);

    class SpawnOnly extends Route<number, number, number> {
      override spawnWorker(worker: RouteWorker<number, number, number>) {
        calls.push('spawnOnly');
        return super.spawnWorker(worker);
      }
    }
    calls.length = 0;
    const s = new SpawnOnly({ target: (x: number) => x * 3 });
    expect(await s.startRoute(null, 2)).toMatchObject({ kind: 'success', value: 6 });
    expect(calls).toEqual(['spawnOnly']);
  });

  it('RouteWorker.run() still returns a promise for a synchronous target', async () => {
    const r = new Route<number, number, number>({ target: (x: number) => x + 1 });
    const worker = r.getWorkerInstance(
      1,
      {},
      {
        entryId: null,
        entrypoint: undefined,
        signal: new AbortController().signal,
        started: false,
        deadline: Infinity,
      },
    ) as RouteWorker<number, number, number>;
    const ran = worker.run();
    expect(ran).toBeInstanceOf(Promise);
    expect((await ran).result).toBe(2);
  });

  it('mixed synchronous and waiting messages: stop hands back the waiting ones, oldest first, and drains', async () => {
    const gate = deferred<void>();
    const r = new Route<number, number, number>({
      target: async (x: number) => {
        if (x === 0) await gate.promise;
        return x;
      },
    });
    const runner = new Runner({ routes: [r], maxWorkers: 1 });
    await runner.start();
    const first = r.startRoute('m0', 0);
    const waiting = [1, 2, 3].map(i => r.startRoute(`m${i}`, i));
    expect(r.inFlight).toBe(4);
    const stopping = runner.stop({ timeoutMs: 5_000 });
    await Promise.resolve();
    gate.resolve();
    const report = await stopping;
    expect(report.returned.map(ref => ref.entryId)).toEqual(['m1', 'm2', 'm3']);
    expect(report.completed).toBe(1);
    expect((await first).kind).toBe('success');
    for (const o of await Promise.all(waiting)) expect((o as Outcome).kind).toBe('cancelled');
    expect(r.inFlight).toBe(0);
  });
});
