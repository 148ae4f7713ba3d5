import { policyContext } from '@x/resilience';
import { HttpStatusError, RequestAbortedError } from '../errors.js';
import type { Response } from '../response.js';
import type { CallLink } from './callLink.js';
import type { CallSpec } from './callSpec.js';
import type { EngineConfig } from './engineConfig.js';
import { Exchange } from './exchange.js';
import type { HostPool } from './hostPool.js';
import type { Picker } from './picker.js';

/** What {@link hedgedTry} needs from the client (handed in: the engine). */
export interface HedgedTries {
  readonly config: Pick<EngineConfig, 'hedge' | 'retry'>;
  /** One try on one host (the engine's attempt path). */
  tryOnce(host: HostPool, spec: CallSpec, ex: Exchange): Promise<Response>;
  /** A backup try was launched on `host` (events, metrics). */
  hedgeLaunched(host: HostPool, attempt: number): void;
}

/**
 * One try hedged with backup tries on other hosts (`@x/resilience` hedge): the policy decides
 * when to launch a backup; the first good answer wins and the other tries are cancelled here
 * (without reading the policy's lazily created signal, which would cost an AbortController).
 */
export async function hedgedTry(
  tries: HedgedTries,
  first: HostPool,
  spec: CallSpec,
  attempt: number,
  pick: Picker,
  link: CallLink | undefined,
): Promise<Response> {
  const used: HostPool[] = [];
  const running = new Set<Exchange>();
  const retry = tries.config.retry;
  try {
    return await tries.config.hedge!.run(
      async context => {
        let host = first;
        if (context.attempt > 0) {
          host = pick(used) ?? first;
          tries.hedgeLaunched(host, context.attempt);
          spec.trace?.event('hedge', { 'x.hedge': context.attempt, 'server.address': host.origin });
        }
        used.push(host);
        const ex = new Exchange(spec, host.origin, attempt);
        running.add(ex);
        link?.track(ex);
        try {
          const response = await tries.tryOnce(host, spec, ex);
          if (
            response.status >= 400 &&
            (response.status === 408 || retry?.statuses.has(response.status))
          ) {
            throw new HttpStatusError(response, ex.info());
          }
          return response;
        } finally {
          running.delete(ex);
          link?.untrack(ex);
        }
      },
      policyContext({ signal: spec.signal, deadline: spec.deadline }),
    );
  } finally {
    for (const ex of running)
      ex.abort(new RequestAbortedError('another hedged try answered first', ex.info()));
  }
}
