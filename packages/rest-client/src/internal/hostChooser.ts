import { loadCost, type Balancer } from '@x/resilience';
import type { HostHealth } from './hostHealth.js';
import type { HostPool } from './hostPool.js';

/** The least-loaded cost of the default `priority`: 5 in-flight requests per consecutive failure. */
const PRIORITY_COST = { errorPenalty: 5 } as const;

/**
 * Host choice of one client: health eligibility (with panic routing), the `priority` tiers of
 * lupyne's extension point, then the balancer.
 */
export class HostChooser {
  /** Custom `priority(host)` (a subclass override or option), or undefined for the default. */
  priorityFn: ((host: string) => number | null | undefined) | undefined = undefined;

  constructor(
    private readonly balancer: Balancer<HostPool>,
    private readonly health: HostHealth | undefined,
    private readonly now: () => number,
  ) {}

  /**
   * Chooses among `candidates`, skipping `tried` and ineligible hosts: the hosts with the lowest
   * `priority` when it is customised (null eliminates), then the balancer. When only ejection
   * leaves nothing, ejection is ignored (Envoy's panic routing) so a subset of hosts that are all
   * ejected still gets traffic.
   */
  choose(
    candidates: readonly HostPool[],
    tried: readonly HostPool[] | undefined,
  ): HostPool | undefined {
    let exclude: Set<HostPool> | undefined;
    if (tried !== undefined && tried.length > 0) exclude = new Set(tried);
    let withHealth = exclude;
    const health = this.health;
    if (health !== undefined && health.ejectedCount > 0) {
      for (let i = 0; i < candidates.length; i++) {
        const host = candidates[i]!;
        if (host.state !== 'healthy' && !health.eligible(host))
          (withHealth ??= new Set(exclude)).add(host);
      }
    }
    let picked = this.pickAmong(candidates, withHealth);
    if (picked === undefined && withHealth !== exclude)
      picked = this.pickAmong(candidates, exclude);
    return picked;
  }

  private pickAmong(
    candidates: readonly HostPool[],
    exclude: Set<HostPool> | undefined,
  ): HostPool | undefined {
    const priority = this.priorityFn;
    if (priority === undefined) return this.balancer.pick(candidates, exclude);
    let best = Infinity;
    let tier: HostPool[] = [];
    for (const host of candidates) {
      if (exclude?.has(host)) continue;
      const p = priority(host.origin);
      if (p === null || p === undefined) continue;
      if (typeof p !== 'number' || Number.isNaN(p))
        throw new TypeError(
          `priority(${host.origin}) must return a number or null, got ${String(p)}`,
        );
      if (p < best) {
        best = p;
        tier = [host];
      } else if (p === best) {
        tier.push(host);
      }
    }
    return this.balancer.pick(tier, exclude);
  }

  /**
   * The default `priority(host)`: null when not eligible, else `@x/resilience`'s `loadCost`:
   * in flight + 5 per consecutive failure (up to 10).
   */
  defaultPriority(host: HostPool): number | null {
    if (
      host.state !== 'healthy' &&
      (host.state === 'ejected' ? this.now() < host.ejectedUntil : host.probeInFlight)
    )
      return null;
    return loadCost(host.load, PRIORITY_COST);
  }

  /** True when a host may take a request now, health-wise (see `HostHealth.eligible`). */
  eligible(host: HostPool): boolean {
    return this.health === undefined || this.health.eligible(host);
  }
}
