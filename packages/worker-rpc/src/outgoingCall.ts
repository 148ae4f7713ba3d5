import type { Clock, TimerEntry, TimerHandle, TraceSpan } from '@x/resilience';
import type { EndpointHandle } from './endpointHandle.js';
import type { WorkerRpcError } from './errors.js';
import type { IdSource } from './internal/ids.js';
import type { OutgoingRequest } from './transport.js';

/** The attempts of a call not sent yet (frozen: the first send replaces it). */
const NO_ATTEMPTS = Object.freeze([]) as unknown as Attempt[];

/** Where the outcome of one attempt goes: the call itself, or the attempt's retry/hedge policy. */
export interface AttemptSink {
  ok(call: OutgoingCall, value: unknown): void;
  fail(call: OutgoingCall, error: WorkerRpcError): void;
}

/** One send of a call to one endpoint (same request id for every attempt of a call). */
export class Attempt {
  /** No longer counted in flight (settled, timed out or failed). */
  ended = false;
  /** The attempt timeout (`retry.attemptTimeoutMs`), when armed. */
  timer: TimerHandle | undefined;
  /** The attempt's `client` span, when the call is traced. */
  span: TraceSpan | undefined;
  constructor(
    readonly call: OutgoingCall,
    readonly endpoint: EndpointHandle,
    readonly n: number,
    readonly startedAt: number,
    readonly sink: AttemptSink,
  ) {}
}

/**
 * The client-side state of one call: what the transports send (it is the {@link OutgoingRequest}
 * of every attempt), its deadline and signals, its attempts, and whether it waits in the admission
 * queue. Settled once by the connection. It is also its own deadline entry in the connection's
 * `TimerQueue` (one clock timer for every call, no timer or closure per call).
 */
export class OutgoingCall implements OutgoingRequest, TimerEntry {
  done = false;
  /** Deadline entry (TimerEntry): expiry, list links and whether it is queued. */
  at: number;
  prev: TimerEntry | undefined = undefined;
  next: TimerEntry | undefined = undefined;
  queued = false;
  /** Called when the deadline passes while the call is pending (shared by all calls of a connection). */
  expire: ((call: OutgoingCall) => void) | undefined = undefined;
  /** Attempt number of the next (or queued) send: 0 first, then retries and hedges. */
  attempt = 0;
  /** Every attempt sent, in order (a shared empty array until the first one). */
  attempts: Attempt[] = NO_ATTEMPTS;
  /** Waiting in the admission queue for an endpoint with credit. */
  waiting = false;
  /** Waits for an endpoint while none is up or connecting (`waitForReady`) instead of failing. */
  waitForReady = false;
  /** Where the queued attempt's outcome goes once it is sent. */
  pendingSink: AttemptSink | undefined;
  resolve!: (value: unknown) => void;
  reject!: (error: unknown) => void;
  onAbort: (() => void) | undefined;
  /** Aborts the retry/hedge policy running the call's attempts, once the call settled. */
  abortController: AbortController | undefined;
  /** The call's `client` span, when traced (see `rpcTracers.ts`). */
  span: TraceSpan | undefined;

  /** The id's bytes once something asked for them (see {@link id}). */
  private idBytes: Buffer | undefined = undefined;

  constructor(
    private readonly clock: Clock,
    readonly seq: number,
    /** Where the id comes from (`seq` under the connection's nonce). */
    private readonly ids: IdSource,
    readonly method: string,
    readonly idempotent: boolean,
    readonly key: string,
    readonly meta: Readonly<Record<string, string>> | undefined,
    readonly ack: boolean,
    readonly codec: string,
    readonly contentType: string,
    readonly encoding: string,
    compressed: boolean,
    body: Uint8Array,
    readonly deadline: number,
    readonly startedAt: number,
    readonly maxAttempts: number,
    readonly signals: readonly AbortSignal[],
    /** The timeout the deadline came from (for the TIMEOUT message). */
    readonly timeoutMs: number,
  ) {
    this.at = deadline;
    this.compressed = compressed;
    this.body = body;
  }

  /** The clock's time while the connection hands an attempt to its channel: saves a clock read. */
  sendingAt: number | undefined = undefined;
  /** Whether `body` is compressed (set once, before the first send). */
  compressed: boolean;
  /** Encoded (and maybe compressed) params (set once, before the first send). */
  body: Uint8Array;

  /** The call with its body compressed (`invoke` compresses after making the call). */
  compressedAs(body: Uint8Array): this {
    this.body = body;
    this.compressed = true;
    return this;
  }

  /** The 16-byte request id, made on first use (the ZeroMQ transport writes it with {@link writeId}). */
  get id(): Buffer {
    return (this.idBytes ??= this.ids.idOf(this.seq));
  }

  /** Writes the id into `target` at `offset` without allocating it. */
  writeId(target: Uint8Array, offset: number): void {
    if (this.idBytes !== undefined) target.set(this.idBytes, offset);
    else this.ids.writeId(this.seq, target, offset);
  }

  /** TimerEntry: the deadline passed. */
  fire(): void {
    this.expire?.(this);
  }

  /** Milliseconds left (the wrpc/1 budget sent with each attempt); -1 when there is no deadline. */
  budgetMs(): number {
    if (this.deadline === Infinity) return -1;
    const now = this.sendingAt ?? this.clock.now();
    return Math.max(0, this.deadline - now);
  }

  /** The request as seen for attempt `n` (CANCEL carries the attempt it cancels). */
  asAttempt(n: number): OutgoingRequest {
    if (n === this.attempt) return this;
    return Object.create(this, { attempt: { value: n } }) as OutgoingRequest;
  }

  /** The live attempt on `endpoint`, else the last ended one there. */
  attemptOn(endpoint: EndpointHandle): Attempt | undefined {
    let found: Attempt | undefined;
    for (const a of this.attempts) {
      if (a.endpoint === endpoint) {
        if (!a.ended) return a;
        found = a;
      }
    }
    return found;
  }
}
