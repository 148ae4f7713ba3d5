import { LoadTracker, type Balancer, type Clock, type EndpointOutcome } from '@x/resilience';
import type { HostPool } from './hostPool.js';

/**
 * The one source of per-host load of a client: the balancer's `LoadTracker` (in flight,
 * requests, failures, failure streak, peak-EWMA latency), read by the balancer, the default
 * `priority`, the pending limit and `stats()`. A custom balancer without a tracker gets one of
 * the client's beside it, fed the same starts and ends.
 */
export class HostLoad {
  /** The tracker every host's `load` lives in. */
  readonly tracker: LoadTracker<HostPool>;
  /** The custom balancer that also needs each start and end, when the tracker is not its own. */
  private readonly alsoTell: Balancer<HostPool> | undefined;

  constructor(
    private readonly balancer: Balancer<HostPool>,
    clock: Clock,
  ) {
    const own = balancer.tracker;
    if (own instanceof LoadTracker) {
      this.tracker = own;
      this.alsoTell = undefined;
    } else {
      this.tracker = new LoadTracker<HostPool>({ clock });
      this.alsoTell = balancer;
    }
  }

  /** A request to `host` goes on the wire. */
  start(host: HostPool): void {
    if (this.alsoTell === undefined) this.balancer.start(host);
    else {
      this.tracker.start(host);
      this.alsoTell.start(host);
    }
  }

  /** It ended (`neutral`: an outcome that says nothing about the host's health). */
  end(host: HostPool, outcome: EndpointOutcome): void {
    if (this.alsoTell === undefined) this.balancer.end(host, outcome);
    else {
      this.tracker.end(host, outcome);
      this.alsoTell.end(host, outcome);
    }
  }

  /** The host was removed: its stats go. */
  forget(host: HostPool): void {
    this.balancer.forget(host);
    if (this.alsoTell !== undefined) this.tracker.forget(host);
  }
}
