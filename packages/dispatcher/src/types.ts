/** A module (GAE service) name. */
export type ModuleName = string;
/** A version id. */
export type VersionId = string;
/** An instance id (`'0'`, `'1'` … for manual and basic scaling; random hex for automatic). */
export type InstanceId = string;

/** Header list that keeps duplicates and order: `[name, value]` pairs. */
export type HeaderList = Array<[string, string]>;

/** Headers accepted on input: a list of pairs, a plain record, or a fetch `Headers`. */
export type HeadersInput =
  | ReadonlyArray<readonly [string, string]>
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | Headers;

/** Request bodies accepted by `addRequest`. */
export type BodyInput =
  string | Uint8Array | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | null | undefined;

/** Where a request should go; every field is optional (GAE `module_name`, `version`, `instance_id`). */
export interface DispatchTarget {
  readonly module?: ModuleName;
  readonly version?: VersionId;
  readonly instance?: InstanceId;
}

/** A request handed to `addRequest`, `addAsyncRequest` or `explain`. */
export interface DispatchRequest extends DispatchTarget {
  /** HTTP method. Default `'GET'`. */
  readonly method?: string;
  /** Path and query (GAE `relative_url`), e.g. `/api/items?limit=2`. */
  readonly url: string;
  /** Request headers; a `Host` header takes part in routing. */
  readonly headers?: HeadersInput;
  /** Request body. */
  readonly body?: BodyInput;
  /** Client address (GAE `source_ip`). Default `'0.1.0.1'`. */
  readonly sourceIp?: string;
  /** Aborts the request (rejecting with `ABORTED`). */
  readonly signal?: AbortSignal;
  /** Deadline of the whole request in ms. Default: the dispatcher's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** GAE's `ResponseTuple`: numeric status, reason phrase, header list keeping duplicates, body. */
export interface ResponseTuple {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  readonly body: Uint8Array;
}

/** Kinds of requests an instance receives (GAE request types). */
export type RequestKind = 'normal' | 'ready' | 'background' | 'shutdown' | 'health';

/** Life of an instance. */
/**
 * Life of an instance. `crash-loop`: its last start failed and a restart is scheduled (with
 * backoff, at `nextRestartAt`); `failed`: it died or gave up restarting.
 */
export type InstanceState = 'stopped' | 'starting' | 'ready' | 'draining' | 'crash-loop' | 'failed';

/** Health of an instance: `unchecked` without `healthCheck`; `unhealthy` is out of rotation. */
export type InstanceHealth = 'unchecked' | 'healthy' | 'unhealthy';

/** A snapshot of one instance, from `getInstances` and the admin API. */
export interface InstanceInfo {
  readonly module: ModuleName;
  readonly version: VersionId;
  readonly id: InstanceId;
  readonly state: InstanceState;
  /** Process id for child-process instances. */
  readonly pid: number | undefined;
  /** Base URL for out-of-process instances (`http://127.0.0.1:PORT`). */
  readonly origin: string | undefined;
  /** Port of out-of-process instances. */
  readonly port: number | undefined;
  /** Requests running now. */
  readonly inFlight: number;
  /** Requests waiting for a slot of this instance. */
  readonly queued: number;
  /** Background requests running now. */
  readonly background: number;
  /** False while it is out of rotation (failed health checks or timeouts in a row). */
  readonly healthy: boolean;
  readonly health: InstanceHealth;
  /** Why it is unhealthy (the last probe failure, or the timeouts that ejected it). */
  readonly unhealthyReason: string | undefined;
  /** Times it was restarted after dying. */
  readonly restarts: number;
  /** Requests served since it started. */
  readonly served: number;
  /** Starts that failed in a row (0 once a start succeeds). */
  readonly startFailures: number;
  /** Message of the last failed start (with the child's last output lines), until one succeeds. */
  readonly lastError: string | undefined;
  /** Clock time (ms) of the scheduled restart, when one is scheduled. */
  readonly nextRestartAt: number | undefined;
}
