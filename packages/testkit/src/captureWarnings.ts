/** Warnings collected by {@link captureWarnings}. */
export interface CapturedWarnings {
  /** The warnings seen so far, optionally only those of one `name` (e.g. `TimeoutOverflowWarning`). */
  list(name?: string): Error[];
  /** Waits for warnings already emitted (they are delivered on a later tick), then stops listening. */
  stop(): Promise<Error[]>;
}

/**
 * Listens on `process` 'warning' events from now on, e.g. to prove that no
 * `TimeoutOverflowWarning` was printed while a call with a huge timeout ran.
 */
export function captureWarnings(): CapturedWarnings {
  const seen: Error[] = [];
  const onWarning = (warning: Error) => seen.push(warning);
  process.on('warning', onWarning);
  const list = (name?: string) => (name ? seen.filter(w => w.name === name) : [...seen]);
  return {
    list,
    async stop() {
      await new Promise<void>(resolve => setImmediate(resolve));
      process.off('warning', onWarning);
      return list();
    },
  };
}
