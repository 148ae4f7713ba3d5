import { InvalidConfigError } from '../errors.js';
import type { Backend, InProcessHandler, InstanceExit, RuntimeProxy } from '../backend.js';

/** Options of {@link inProcess}. */
export interface InProcessOptions {
  /** Most instances. Default Infinity. */
  readonly maxInstances?: number;
}

/**
 * A backend whose instances are a handler function in this process (handy for tests, for
 * embedding, and as the `worker` of a gateway). Each instance is a separate capacity slot with
 * its own `maxConcurrentRequests`; lifecycle hooks (`onStart`, `onWarmup`, `onStop`) stand in for
 * the `/_ah/*` requests.
 */
export function inProcess(handler: InProcessHandler, options: InProcessOptions = {}): Backend {
  if (typeof handler !== 'function')
    throw new InvalidConfigError('inProcess() needs a handler function');
  const { maxInstances = Infinity } = options;
  if (!(maxInstances >= 1)) throw new InvalidConfigError('maxInstances must be >= 1');
  return {
    kind: 'in-process',
    maxInstances,
    lifecycleRequests: false,
    create(): RuntimeProxy {
      return {
        origin: undefined,
        pid: undefined,
        port: undefined,
        start: async signal => {
          if (signal.aborted) throw signal.reason;
        },
        handle: handler,
        stop: async () => {},
        onExit(_listener: (exit: InstanceExit) => void) {},
      };
    },
  };
}
