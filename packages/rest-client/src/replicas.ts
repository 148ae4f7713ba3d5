import type { HealthOptions } from './passiveHealth.js';
import { READ_METHODS } from './internal/callSpec.js';
import type { Mode, Picker } from './internal/engine.js';
import type { RestQuery } from './internal/path.js';
import { Resources, type ResourcesOptions, type UnicastOptions } from './resources.js';

/**
 * Primary/replica hosts (lupyne's `Replicas`): writes (every method but GET, HEAD and OPTIONS) go
 * to the primary, the first host in order that is not ejected, and fail over to the next one in
 * order; reads are balanced over the hosts that are not ejected. Unlike lupyne, a failed host is
 * readmitted after a probe (and becomes primary again when it comes first).
 *
 * Health defaults differ from `Resources`: one connection failure or timeout ejects a host
 * (`consecutiveFailures: 1`, not 5xx), and every host but the last may be ejected.
 */
export class Replicas extends Resources {
  private readonly pickPrimary: Picker;

  constructor(hosts: Iterable<string>, options: ResourcesOptions = {}) {
    super(hosts, options);
    const engine = this.engine;
    this.pickPrimary = tried => {
      const all = engine.hosts;
      for (const host of all) if (engine.eligible(host) && !tried?.includes(host)) return host;
      for (const host of all) if (!tried?.includes(host)) return host; // every host ejected: try in order anyway
      return undefined;
    };
  }

  /** @internal */
  protected override healthDefaults(): Partial<HealthOptions> {
    return { consecutiveFailures: 1, maxEjectedPercent: 100, on5xx: false };
  }

  /** The host writes go to now: the first host in order that is not ejected. */
  get primary(): string | undefined {
    for (const host of this.engine.hosts) if (host.state === 'healthy') return host.origin;
    return this.engine.hosts[0]?.origin;
  }

  /** @internal */
  protected override run(
    method: string,
    path: string,
    options: UnicastOptions | undefined,
    query: RestQuery | undefined,
    json: unknown,
    hasJson: boolean,
    mode: Mode,
    pick?: Picker,
  ): Promise<unknown> {
    const write = typeof method === 'string' && !READ_METHODS.has(method.toUpperCase());
    return super.run(
      method,
      path,
      options,
      query,
      json,
      hasJson,
      mode,
      pick ?? (write && options?.hosts === undefined ? this.pickPrimary : undefined),
    );
  }
}
