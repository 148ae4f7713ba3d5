import {
  leastLoaded,
  peakEwma,
  priority,
  random,
  roundRobin,
  type Balancer,
  type LeastLoadedOptions,
  type PeakEwmaOptions,
  type PriorityOptions,
  type RandomOptions,
  type RoundRobinOptions,
} from '@x/resilience';
import type { Upstream } from './hostStats.js';

/**
 * Host balancers for `Resources`: the `@x/resilience` balancers typed for hosts, plus lupyne's
 * original rule. Every one tracks load (in flight, peak-EWMA latency, consecutive failures).
 */
export const balancers = {
  /**
   * The default: power of two choices over `inFlight + errorPenalty * consecutiveFailures`
   * (`errorPenalty` 5). Ejected hosts are never candidates.
   */
  leastLoaded: (options?: LeastLoadedOptions): Balancer<Upstream> => leastLoaded<Upstream>(options),
  /**
   * lupyne's rule, exactly: the host with the most idle ("cached") connections, i.e. the lowest
   * `-idle`, chosen uniformly at random among ties.
   */
  lupyne: (options?: PriorityOptions): Balancer<Upstream> => {
    const balancer = priority<Upstream>(host => -host.idle, options);
    return Object.assign(balancer, { name: 'lupyne' });
  },
  /** Latency-aware power of two choices (peak EWMA × in flight). */
  peakEwma: (options?: PeakEwmaOptions): Balancer<Upstream> => peakEwma<Upstream>(options),
  /** Round robin, skipping hosts already tried by the call. */
  roundRobin: (options?: RoundRobinOptions): Balancer<Upstream> => roundRobin<Upstream>(options),
  /** Uniformly random. */
  random: (options?: RandomOptions): Balancer<Upstream> => random<Upstream>(options),
} as const;
