import type { Balancer } from './balancers/balancer.js';
import { leastLoaded } from './balancers/leastLoaded.js';
import type { Clock } from './clock.js';
import { toEndpoint, type Endpoint } from './endpoint.js';
import { NoEndpointError } from './errors.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { invoke } from './internal/invoke.js';
import type { Scope } from './internal/scope.js';
import type { PolicyContext, Task } from './policy.js';

/** What a load balancer function may return: `'http://host:port'`, `'host:port'`, `[protocol, netloc]` or an {@link Endpoint}. */
export type EndpointLike = string | readonly [string, string] | Endpoint;

/**
 * dace's `load_balancer`: a function returning where to go (it is told the attempt and the
 * endpoints already tried), or a list of endpoints with a balancer (default least-loaded P2C).
 */
export type LoadBalancerOption =
  | ((attempt: { readonly attempt: number; readonly tried: readonly Endpoint[] }) => EndpointLike)
  | readonly EndpointLike[]
  | { readonly endpoints: readonly EndpointLike[]; readonly balancer?: Balancer<Endpoint> };

/** Options of {@link loadBalance}. */
export interface LoadBalanceOptions {
  readonly clock?: Clock;
}

/**
 * Chooses an endpoint for each attempt and puts it on the context (`context.endpoint`). A retry or
 * a hedge goes to an endpoint not tried yet in this call while one is left.
 */
export class LoadBalancePolicy extends PolicyBase {
  private readonly endpoints: Endpoint[] | undefined;
  private readonly balancer: Balancer<Endpoint> | undefined;
  private readonly source:
    ((attempt: { attempt: number; tried: readonly Endpoint[] }) => EndpointLike) | undefined;

  constructor(option: LoadBalancerOption, options: LoadBalanceOptions = {}) {
    super(options.clock);
    if (typeof option === 'function') {
      this.source = option;
    } else {
      const list = Array.isArray(option)
        ? (option as readonly EndpointLike[])
        : (option as { endpoints: readonly EndpointLike[] }).endpoints;
      if (!Array.isArray(list) || list.length === 0)
        throw new RangeError('loadBalancer needs at least one endpoint');
      const seen = new Map<string, Endpoint>();
      for (const e of list) {
        const endpoint = toEndpoint(e);
        if (!seen.has(endpoint.origin)) seen.set(endpoint.origin, endpoint);
      }
      this.endpoints = [...seen.values()];
      this.balancer =
        (option as { balancer?: Balancer<Endpoint> }).balancer ?? leastLoaded<Endpoint>();
    }
  }

  /** The balancer (undefined for a function balancer). */
  get picker(): Balancer<Endpoint> | undefined {
    return this.balancer;
  }

  /** The endpoints balanced over (undefined for a function balancer). */
  get pool(): readonly Endpoint[] | undefined {
    return this.endpoints;
  }

  /**
   * Chooses the endpoint for the scope's attempt, preferring one not tried yet and, when
   * `unavailable` is given (e.g. "its circuit is open"), one that is available while any is.
   */
  choose(scope: Scope, unavailable?: (endpoint: Endpoint) => boolean): Endpoint {
    const tried = scope.tried;
    let endpoint: Endpoint | undefined;
    if (this.source) {
      for (let i = 0; i < 3; i++) {
        endpoint = toEndpoint(this.source({ attempt: scope.attempt, tried: tried ?? [] }));
        if (!tried?.some(t => t.origin === endpoint!.origin)) break;
      }
    } else {
      let candidates = this.endpoints!;
      if (unavailable) {
        const available = candidates.filter(e => !unavailable(e));
        if (available.length > 0) candidates = available;
      }
      endpoint = tried ? this.balancer!.pick(candidates, new Set(tried)) : undefined;
      endpoint ??= this.balancer!.pick(candidates);
    }
    if (!endpoint) throw new NoEndpointError();
    if (tried) tried.push(endpoint);
    else scope.tried = [endpoint];
    scope.endpoint = endpoint;
    return endpoint;
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    const scope = asScope(context, this.clock);
    let endpoint: Endpoint;
    try {
      endpoint = this.choose(scope);
    } catch (error) {
      return Promise.reject(error); // a rejection, never a synchronous throw from execute()/run()
    }
    const balancer = this.balancer;
    if (!balancer) return invoke(task, scope);
    balancer.start(endpoint);
    const start = this.clock.now();
    return invoke(task, scope).then(
      value => {
        balancer.end(endpoint, { ok: true, durationMs: this.clock.now() - start });
        return value;
      },
      error => {
        balancer.end(endpoint, { ok: false, durationMs: this.clock.now() - start });
        throw error;
      },
    );
  }
}

/** A {@link LoadBalancePolicy}. */
export function loadBalance(
  option: LoadBalancerOption,
  options?: LoadBalanceOptions,
): LoadBalancePolicy {
  return new LoadBalancePolicy(option, options);
}
