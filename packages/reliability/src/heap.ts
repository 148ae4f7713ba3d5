import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setImmediate as nextTurn } from 'node:timers/promises';

setFlagsFromString('--expose-gc');
/** V8's `gc()`, exposed at run time (the vitest worker is not started with `--expose-gc`). */
const gc = runInNewContext('gc') as () => void;

/** Bytes of heap in use after full collections (finalizers get a turn in between). */
export async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await nextTurn();
  }
  return process.memoryUsage().heapUsed;
}

/** Megabytes the heap grew since `before` (a {@link heapAfterGc} reading), after full collections. */
export async function heapGrowthMbSince(before: number): Promise<number> {
  return ((await heapAfterGc()) - before) / 2 ** 20;
}
