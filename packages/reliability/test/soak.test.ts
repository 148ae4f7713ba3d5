// Soak and leaks: a million calls (long profile) through `faultTolerant` and `Resources.unicast`
// against loopback servers grow the heap by less than 20 MB and leave no open handle. Each soak
// runs in its own process (fixtures/soak.mjs), which prints its result and then just returns: the
// process must exit by itself, which it only does when every socket, timer and child was closed.
import { once } from 'node:events';
import { join } from 'node:path';
import { startNodeProcess } from '@x/testkit';
import { describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { FIXTURES_DIR } from '../src/fixtureProcess.js';
import { sized } from '../src/profile.js';

/** What fixtures/soak.mjs prints. */
interface SoakResult {
  target: string;
  calls: number;
  ok: number;
  firstFailure: string | null;
  heapBeforeMb: number;
  heapAfterMb: number;
  heapGrowthMb: number;
  callsPerSec: number;
  /** Connections to the servers still open after the client's close(). */
  connectionsAfterClose: number;
  activeResources: string[];
}

const MAX_HEAP_GROWTH_MB = 20;
/** How long the fixture may take to exit after printing its result. */
const EXIT_WITHIN_MS = 5_000;

const SOAKS = [
  { target: 'faultTolerant', calls: sized({ quick: 120_000, long: 1_000_000 }) },
  { target: 'unicast', calls: sized({ quick: 180_000, long: 1_000_000 }) },
];
/** Generous: 1 000 calls/s, far below the ~5 000-15 000 measured on a 2-core VM. */
const runTimeoutMs = (calls: number) => 30_000 + calls;

describe('soak: heap and handles after many calls on loopback', () => {
  for (const { target, calls } of SOAKS) {
    it(
      `${target}: ${calls} calls succeed, the heap grows < ${MAX_HEAP_GROWTH_MB} MB, the process exits by itself`,
      { timeout: runTimeoutMs(calls) + EXIT_WITHIN_MS + 5_000 },
      async () => {
        const child = await startNodeProcess(join(FIXTURES_DIR, 'soak.mjs'), {
          args: [target, String(calls), '32'],
          env: { NODE_OPTIONS: '--expose-gc' },
          readyPattern: /^\{"target"/,
          timeoutMs: runTimeoutMs(calls),
        });
        const printedAt = performance.now();
        const line = child
          .stdout()
          .split('\n')
          .find(l => l.startsWith('{"target"'))!;
        const result = JSON.parse(line) as SoakResult;

        const exited =
          child.child.exitCode !== null
            ? Promise.resolve()
            : once(child.child, 'exit').then(() => undefined);
        const timer = new Promise<'timeout'>(resolve =>
          setTimeout(resolve, EXIT_WITHIN_MS, 'timeout').unref(),
        );
        const outcome = await Promise.race([exited, timer]);
        const exitMs = performance.now() - printedAt;
        if (outcome === 'timeout') await child.kill('SIGKILL');

        recordFigure({ section: 'soak', name: `${target}: calls`, value: calls });
        recordFigure({
          section: 'soak',
          name: `${target}: failed calls`,
          value: calls - result.ok,
          target: '0',
        });
        recordFigure({
          section: 'soak',
          name: `${target}: heap after warm-up → after the run (MB)`,
          value: `${result.heapBeforeMb.toFixed(1)} → ${result.heapAfterMb.toFixed(1)}`,
        });
        recordFigure({
          section: 'soak',
          name: `${target}: heap growth (MB)`,
          value: result.heapGrowthMb.toFixed(2),
          target: `< ${MAX_HEAP_GROWTH_MB}`,
        });
        recordFigure({
          section: 'soak',
          name: `${target}: calls/s`,
          value: Math.round(result.callsPerSec),
        });
        recordFigure({
          section: 'soak',
          name: `${target}: connections left open by the client's close()`,
          value: result.connectionsAfterClose,
          target: '0',
        });
        recordFigure({
          section: 'soak',
          name: `${target}: exit after the result (ms)`,
          value: outcome === 'timeout' ? `> ${EXIT_WITHIN_MS}` : Math.round(exitMs),
          target: `< ${EXIT_WITHIN_MS}`,
        });

        expect(result.firstFailure).toBeNull();
        expect(result.ok).toBe(calls);
        expect(result.heapGrowthMb).toBeLessThan(MAX_HEAP_GROWTH_MB);
        expect(result.connectionsAfterClose).toBe(0);
        expect(
          outcome,
          `still running ${EXIT_WITHIN_MS} ms after its result; open: ${result.activeResources.join(', ')}`,
        ).not.toBe('timeout');
        expect(child.child.exitCode, child.stderr()).toBe(0);
      },
    );
  }
});
