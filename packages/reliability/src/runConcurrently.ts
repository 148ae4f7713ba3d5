/**
 * Runs `task(0) … task(count - 1)` with at most `concurrency` running at once, in index order;
 * resolves when all have settled (a task's rejection is its own business: catch inside it).
 */
export async function runConcurrently(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++).catch(() => {});
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

/**
 * Runs `task` in `concurrency` loops until `until()` is true (checked before each task); resolves
 * when every loop has finished its last task.
 */
export async function loopUntil(
  until: () => boolean,
  concurrency: number,
  task: () => Promise<unknown>,
): Promise<void> {
  const lane = async () => {
    while (!until()) await task().catch(() => {});
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}
