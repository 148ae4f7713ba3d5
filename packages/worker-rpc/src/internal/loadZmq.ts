import type * as ZeroMQ from 'zeromq';
import { WorkerRpcError } from '../errors.js';

/** The `zeromq` module (v6). */
export type Zmq = typeof ZeroMQ;

let loading: Promise<Zmq> | undefined;

/**
 * Imports the optional peer `zeromq` on first use, so that HTTP-only users never load it.
 * Rejects with `ZMQ_MISSING` when it is not installed.
 */
export function loadZmq(): Promise<Zmq> {
  loading ??= import('zeromq').then(
    (module: unknown) => {
      // zeromq is CommonJS: ESM import gives its exports as `default` (plus detected named ones)
      const m = module as Zmq & { default?: Zmq };
      return m.default?.Dealer ? m.default : m;
    },
    (error: unknown) => {
      loading = undefined;
      throw new WorkerRpcError(
        'ZMQ_MISSING',
        'the ZeroMQ transport needs the optional peer dependency "zeromq" (npm install zeromq@6)',
        { cause: error },
      );
    },
  );
  return loading;
}
