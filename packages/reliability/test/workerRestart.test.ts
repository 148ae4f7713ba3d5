// Faults: a worker-rpc worker (a real child process) is SIGKILLed with calls in flight, then started
// again on the same endpoint. In-flight calls must fail with a clear code by their deadline, calls
// during the outage must not hang, and every call after the restart must succeed.
import { freePort, waitFor } from '@x/testkit';
import { createWorkerConnection, httpTransport } from '@x/worker-rpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadlineLedger, formatCodes } from '../src/deadlineLedger.js';
import { recordFigure } from '../src/figures.js';
import { startFixture } from '../src/fixtureProcess.js';
import { sized } from '../src/profile.js';
import { runConcurrently } from '../src/runConcurrently.js';
import { percent, summarize } from '../src/stats.js';
import { TimerLateness } from '../src/timerLateness.js';

const SECTION = 'faults: worker-rpc worker killed and restarted';
/** The machine's scheduling delay in this run: a late call is excused no more than a bare timer was. */
const scheduling = new TimerLateness();
beforeAll(() => void scheduling.start());
afterAll(() => scheduling.stop());
const IN_FLIGHT = sized({ quick: 20, long: 200 });
const OUTAGE_CALLS = sized({ quick: 10, long: 50 });
const AFTER_RESTART = sized({ quick: 500, long: 20_000 });
/** Deadline of the calls in flight when the worker dies (their handler would take 30 s). */
const IN_FLIGHT_DEADLINE_MS = 2_000;
/** Deadline of the calls made while no worker runs. */
const OUTAGE_DEADLINE_MS = 300;

/**
 * Expected failure codes (worker-rpc README): a lost connection is `UNAVAILABLE`. While no worker
 * listens, ZeroMQ keeps a call queued until its deadline (`TIMEOUT`); HTTP is refused at once
 * (`UNAVAILABLE`).
 */
const EXPECTED = {
  zmq: { inFlight: 'UNAVAILABLE', outage: 'TIMEOUT' },
  http: { inFlight: 'UNAVAILABLE', outage: 'UNAVAILABLE' },
} as const;

describe.each(['zmq', 'http'] as const)(
  'worker-rpc worker killed and restarted (%s)',
  transport => {
    it('fails in-flight calls with a clear code by their deadline, then serves every call after the restart', async () => {
      const port = await freePort();
      let worker = await startFixture('rpcWorker', [transport, String(port)]);
      const conn = createWorkerConnection({
        addresses: worker.ready,
        timeoutMs: 2_000,
        // HTTP: one connection per slow call, so that all of them reach the worker.
        ...(transport === 'http' ? { transport: httpTransport({ connections: IN_FLIGHT }) } : {}),
      });
      try {
        expect(await conn.invoke('echo', 'warm')).toBe('warm');

        // Calls in flight on the worker when it dies (deadline + 50 ms, the bound).
        const inFlight = new DeadlineLedger(50, undefined, scheduling);
        const inFlightSettled = Promise.all(
          Array.from({ length: IN_FLIGHT }, () =>
            inFlight.track(IN_FLIGHT_DEADLINE_MS, () =>
              conn.invoke('slow', { ms: 30_000 }, { timeoutMs: IN_FLIGHT_DEADLINE_MS }),
            ),
          ),
        );
        await waitFor(() => worker.stdout().match(/^STARTED /gm)?.length === IN_FLIGHT, {
          message: `${IN_FLIGHT} slow calls running on the worker`,
        });
        const killedAt = performance.now();
        await worker.kill('SIGKILL');
        await inFlightSettled;
        const allFailedMs = performance.now() - killedAt;

        // Calls while no worker runs.
        const outage = new DeadlineLedger(50, undefined, scheduling);
        await Promise.all(
          Array.from({ length: OUTAGE_CALLS }, (_, i) =>
            outage.track(OUTAGE_DEADLINE_MS, () =>
              conn.invoke('echo', { i }, { timeoutMs: OUTAGE_DEADLINE_MS }),
            ),
          ),
        );

        // The same endpoint again.
        worker = await startFixture('rpcWorker', [transport, String(port)]);
        const upAt = performance.now();
        let probes = 0;
        await waitFor(
          async () => {
            probes++;
            return conn.invoke('echo', 'probe', { timeoutMs: 200 }).then(() => true);
          },
          { timeoutMs: 15_000, intervalMs: 0, message: 'a call succeeds after the restart' },
        );
        const firstSuccessMs = performance.now() - upAt;
        const afterMs: number[] = [];
        let afterOk = 0;
        await runConcurrently(AFTER_RESTART, 32, async i => {
          const start = performance.now();
          await conn.invoke('echo', { i }, { timeoutMs: 2_000 });
          afterOk++;
          afterMs.push(performance.now() - start);
        });

        const failed = inFlight.report();
        const refused = outage.report();
        const after = summarize(afterMs);
        const record = (name: string, value: string | number, target?: string) =>
          recordFigure({ section: SECTION, name: `${transport}: ${name}`, value, target });
        record(
          'in-flight calls failed: codes',
          `${failed.calls - failed.successes}/${failed.calls}: ${formatCodes(failed.codes)}`,
          `all ${EXPECTED[transport].inFlight}`,
        );
        record('SIGKILL → last in-flight call failed (ms)', Math.round(allFailedMs));
        record(
          'outage calls failed: codes',
          `${refused.calls - refused.successes}/${refused.calls}: ${formatCodes(refused.codes)}`,
          `all ${EXPECTED[transport].outage}`,
        );
        record(
          'calls settled after deadline + 50 ms (in flight + outage)',
          failed.violations + refused.violations,
          '0',
        );
        record(
          'restarted worker ready → first success (ms, probes)',
          `${Math.round(firstSuccessMs)} (${probes})`,
        );
        record(
          'calls after the restart succeeded (p50 / p99 ms)',
          `${percent(afterOk, AFTER_RESTART)} of ${AFTER_RESTART} (${after.p50.toFixed(2)} / ${after.p99.toFixed(2)})`,
          '100%',
        );

        expect(failed.successes).toBe(0);
        expect([...failed.codes]).toEqual([[EXPECTED[transport].inFlight, IN_FLIGHT]]);
        expect(refused.successes).toBe(0);
        expect([...refused.codes]).toEqual([[EXPECTED[transport].outage, OUTAGE_CALLS]]);
        expect({ late: failed.violations, lateInOutage: refused.violations }).toEqual({
          late: 0,
          lateInOutage: 0,
        });
        expect(afterOk).toBe(AFTER_RESTART);
        expect({ inFlight: conn.inFlight, queued: conn.queued }).toEqual({
          inFlight: 0,
          queued: 0,
        });
      } finally {
        await conn.close();
        await worker.kill('SIGKILL');
      }
    });
  },
);
