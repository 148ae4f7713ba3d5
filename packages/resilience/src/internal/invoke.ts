/** Calls `task(arg)` and always returns a promise, turning a synchronous throw into a rejection. */
export function invoke<A, T>(task: (arg: A) => T | PromiseLike<T>, arg: A): Promise<T> {
  try {
    const value = task(arg);
    return value instanceof Promise ? value : Promise.resolve(value);
  } catch (error) {
    return Promise.reject(error);
  }
}
