/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as `signal` aborts (the promise
 * itself keeps running: pass the signal to the work too when it can stop). Listeners are removed
 * once it settles.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      value => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      error => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}
