import { toEndpoint } from '@x/resilience';
import { InvalidConfigError } from '../errors.js';
import type { Backend, InstanceExit, RuntimeProxy } from '../backend.js';

/** Options of {@link remote}. */
export interface RemoteOptions {
  /** Send `/_ah/start`, `/_ah/warmup`, `/_ah/stop` to the remote instances. Default false. */
  readonly lifecycleRequests?: boolean;
}

/**
 * A backend of instances running elsewhere (Knative, Kubernetes, PM2, another host): instance
 * `i` is `urls[i]`. The dispatcher only routes to them; starting and stopping an instance adds
 * it to or removes it from the pool (and sends the `/_ah/*` requests when asked).
 */
export function remote(urls: readonly string[], options: RemoteOptions = {}): Backend {
  if (!Array.isArray(urls) || urls.length === 0)
    throw new InvalidConfigError('remote() needs a non-empty list of URLs');
  const origins = urls.map(url => {
    try {
      const endpoint = toEndpoint(url);
      if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')
        throw new TypeError(`unsupported protocol ${endpoint.protocol}`);
      return endpoint.origin;
    } catch (error) {
      throw new InvalidConfigError(`remote(): bad URL ${JSON.stringify(url)}`, { cause: error });
    }
  });
  return {
    kind: 'remote',
    maxInstances: origins.length,
    lifecycleRequests: options.lifecycleRequests ?? false,
    create(context): RuntimeProxy {
      const origin = origins[context.index % origins.length]!;
      const port = Number(new URL(origin).port) || (origin.startsWith('https') ? 443 : 80);
      return {
        origin,
        pid: undefined,
        port,
        start: async signal => {
          if (signal.aborted) throw signal.reason;
        },
        stop: async () => {},
        onExit(_listener: (exit: InstanceExit) => void) {},
      };
    },
  };
}
