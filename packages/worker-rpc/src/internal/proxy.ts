import { inspect } from 'node:util';

type Invoker = (method: string, params: unknown, options: unknown) => Promise<unknown>;

/**
 * Property names the proxy never turns into RPC path segments, so that awaiting, printing,
 * serialising and calling it behave (`conn.proxy.jobs.then` is `undefined`, not a method). Call a
 * remote method with one of these names through `conn.invoke('jobs.then', params, options)`.
 */
export const PROXY_RESERVED_NAMES: readonly string[] = Object.freeze([
  'then',
  'catch',
  'finally',
  'toJSON',
  'constructor',
  'prototype',
  '__proto__',
  'valueOf',
  'toString',
  'inspect',
  'asymmetricMatch',
  '$$typeof',
  'nodeType',
  'call',
  'apply',
  'bind',
]);
const NOT_A_PATH = new Set(PROXY_RESERVED_NAMES);

const MAX_CACHED_PATHS = 1024;

/**
 * The dynamic proxy behind `conn.proxy`: property access builds a dotted path
 * (`proxy.a.b` → `"a.b"`), a call invokes it. `then`, symbols (including `util.inspect.custom`
 * and `Symbol.toPrimitive`), `toJSON`, `constructor` and friends read as `undefined`, so
 * `await conn.proxy`, `console.log(conn.proxy)` and `JSON.stringify` never send a request.
 * Sub-proxies are cached per path (bounded).
 */
export function createProxy(invoke: Invoker): unknown {
  const cache = new Map<string, unknown>();
  const make = (path: string): unknown => {
    const cached = cache.get(path);
    if (cached !== undefined) return cached;
    const workerRpcProxy = () => {};
    const target = workerRpcProxy as unknown as object;
    const proxy = new Proxy(target, {
      get(_target, property) {
        if (typeof property === 'symbol') {
          if (property === inspect.custom)
            return () => `[WorkerConnection proxy${path ? ` ${path}` : ''}]`;
          return undefined;
        }
        if (NOT_A_PATH.has(property)) return undefined;
        return make(path ? `${path}.${property}` : property);
      },
      apply(_target, _this, args: unknown[]) {
        if (!path)
          return Promise.reject(
            new TypeError('call a method of the proxy, e.g. conn.proxy.module.method(params)'),
          );
        return invoke(path, args[0], args[1]);
      },
      has: () => false,
      ownKeys: () => [],
      getOwnPropertyDescriptor: () => undefined,
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
      getPrototypeOf: () => null,
      setPrototypeOf: () => false,
    });
    if (cache.size < MAX_CACHED_PATHS) cache.set(path, proxy);
    return proxy;
  };
  return make('');
}
