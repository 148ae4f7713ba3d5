const ASYNCHRONOUS = Symbol.for('@x/worker-rpc/asynchronous');

/**
 * Marks a handler like toto's `@asynchronous` decorator: the worker acknowledges the request (ACK)
 * before running it, so callers using `ack: 'delivery'` (and toto clients) return at once. Callers
 * waiting for the result still get it when the handler finishes.
 */
export function asynchronous<F extends (...args: any[]) => unknown>(handler: F): F {
  if (typeof handler !== 'function')
    throw new TypeError('asynchronous() expects a handler function');
  Object.defineProperty(handler, ASYNCHRONOUS, { value: true });
  return handler;
}

/** True for handlers wrapped with {@link asynchronous}. */
export function isAsynchronous(handler: unknown): boolean {
  return (
    typeof handler === 'function' &&
    (handler as { [ASYNCHRONOUS]?: boolean })[ASYNCHRONOUS] === true
  );
}
