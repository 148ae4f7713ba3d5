import type { Balancer, Emitter, Logger } from '@x/resilience';
import type { EndpointHandle, EndpointState } from './endpointHandle.js';
import type { WorkerRpcError } from './errors.js';
import type { ChannelState } from './transport.js';
import type { OutgoingCall } from './outgoingCall.js';
import type { WorkerConnectionEvent } from './workerConnectionOptions.js';

/**
 * The endpoints of a connection by address, their states (`connecting`, `up`, `down`,
 * `draining`, `removing`, `closed`, with an `endpoint` event per change) and the choice of an
 * endpoint for an attempt: among the endpoints `up` with credit, by the balancer, preferring one
 * the call has not tried.
 */
export class EndpointRegistry {
  private readonly map = new Map<string, EndpointHandle>();
  /** Endpoints in state `up`, the balancer's candidates. */
  private up: EndpointHandle[] = [];

  constructor(
    private readonly balancer: Balancer<EndpointHandle>,
    /** Whether workers advertise credit (wrpc/1) or not (toto). */
    private readonly usesCredit: boolean,
    private readonly events: Emitter<WorkerConnectionEvent>,
    private readonly logger: Logger,
    /** Credit assumed for an endpoint until its worker advertises some (again after a reconnect). */
    private readonly initialCredit: number,
  ) {}

  /** Endpoints registered (any state). */
  get size(): number {
    return this.map.size;
  }

  /** Endpoints up. */
  get upCount(): number {
    return this.up.length;
  }

  get(address: string): EndpointHandle | undefined {
    return this.map.get(address);
  }

  /** Every endpoint registered. */
  all(): IterableIterator<EndpointHandle> {
    return this.map.values();
  }

  /** Registers `endpoint` (replacing a removed one of the same address); its counters are the balancer's. */
  add(endpoint: EndpointHandle): void {
    endpoint.load = this.balancer.load(endpoint);
    this.map.set(endpoint.address, endpoint);
  }

  /** Forgets `endpoint` (when it is still the one registered for its address). */
  delete(endpoint: EndpointHandle): void {
    if (this.map.get(endpoint.address) === endpoint) this.map.delete(endpoint.address);
    this.balancer.forget(endpoint);
  }

  /** Forgets every endpoint; returns them. */
  clear(): EndpointHandle[] {
    const all = [...this.map.values()];
    this.map.clear();
    this.up = [];
    for (const e of all) this.balancer.forget(e);
    return all;
  }

  /** Whether an endpoint may still come up (connecting, or down and reconnecting). */
  hasConnecting(): boolean {
    for (const e of this.map.values())
      if (e.state === 'connecting' || e.state === 'down') return true;
    return false;
  }

  /** Moves `endpoint` to `state`, emitting an `endpoint` event when it changed. */
  setState(endpoint: EndpointHandle, state: EndpointState, error?: WorkerRpcError): void {
    const wasUp = endpoint.state === 'up';
    const changed = endpoint.state !== state;
    endpoint.state = state;
    if (changed && this.events.active)
      this.events.emit({
        type: 'endpoint',
        address: endpoint.address,
        state,
        ...(error ? { error } : {}),
      });
    if (wasUp !== (state === 'up')) this.up = [...this.map.values()].filter(e => e.state === 'up');
  }

  /**
   * The endpoint state machine, driven by its channel: `up` when it connects, `down` (credit reset)
   * when it is lost, `draining` when its worker says so; an endpoint being removed or closed only
   * notices losses. Returns what the connection must do: `'up'` (send queued calls) or `'lost'`
   * (fail the attempts in flight there).
   */
  onChannelState(
    endpoint: EndpointHandle,
    state: ChannelState,
    error?: WorkerRpcError,
  ): 'up' | 'lost' | undefined {
    if (endpoint.state === 'removing' || endpoint.state === 'closed')
      return state === 'down' ? 'lost' : undefined;
    if (state === 'up' && endpoint.state !== 'up') {
      this.logger.debug({ endpoint: endpoint.address }, 'worker endpoint up');
      this.setState(endpoint, 'up');
      return 'up';
    }
    if (state === 'down') {
      if (endpoint.state !== 'down')
        this.logger.warn(
          { endpoint: endpoint.address, reason: error?.message ?? 'connection lost' },
          'worker endpoint down',
        );
      this.setState(endpoint, 'down', error);
      endpoint.credit = this.initialCredit;
      return 'lost';
    }
    if (state === 'draining') this.setState(endpoint, 'draining');
    return undefined;
  }

  /** The endpoint for the next attempt of `call`, or undefined when none is up with credit. */
  pick(call: OutgoingCall): EndpointHandle | undefined {
    const up = this.up;
    if (up.length === 0) return undefined;
    let candidates = up;
    for (let i = 0; i < up.length; i++) {
      if (!this.eligible(up[i]!)) {
        candidates = up.filter(e => this.eligible(e));
        break;
      }
    }
    if (candidates.length === 0) return undefined;
    if (call.attempts.length > 0) {
      // a retry or hedge: prefer an endpoint this call has not tried
      const tried = new Set<EndpointHandle>();
      for (const a of call.attempts) tried.add(a.endpoint);
      return this.balancer.pick(candidates, tried) ?? this.balancer.pick(candidates);
    }
    return this.balancer.pick(candidates);
  }

  private eligible(e: EndpointHandle): boolean {
    return !this.usesCredit || e.credit > 0 || e.load.inFlight === 0;
  }
}
