// Clients
export { Resource, toOrigin, type StreamResponse } from './resource.js';
export {
  Resources,
  type ResourcesOptions,
  type UnicastOptions,
  type BroadcastOptions,
  type PendingRequest,
} from './resources.js';
export {
  Shards,
  type ShardsOptions,
  type ShardKey,
  type MulticastOptions,
  type Cover,
  type CoverMode,
  type PathFor,
} from './shards.js';
export { Replicas } from './replicas.js';
export type { ResourceOptions } from './resourceOptions.js';

// Requests and responses
export { Response } from './response.js';
export type { RestResponse, ResponseHeaders } from './restResponse.js';
export type {
  RestCallOptions,
  DecodeMode,
  HedgeOption,
  RestQuery,
  RestRetryOptions,
  Timeouts,
} from './restCallOptions.js';
export {
  quorum,
  type BroadcastMode,
  type BroadcastResult,
  type MulticastResult,
} from './broadcastResult.js';

// Balancing, health, stats, events
export { balancers } from './balancers.js';
export type { HealthOptions, ProbeOptions } from './passiveHealth.js';
export type { HostStats, HostState, Upstream } from './hostStats.js';
export type { RestClientEvent, RestClientEventType, RestClientEventOf } from './events.js';

// Errors
export {
  RestClientError,
  isRestClientError,
  HttpStatusError,
  RequestTimeoutError,
  RequestAbortedError,
  ConnectError,
  SocketError,
  NoHostError,
  ResponseDecodeError,
  ResponseTooLargeError,
  RetryBudgetDeniedError,
  InvalidCallError,
  PoolQueueFullError,
  ClosedError,
  type RestClientErrorCode,
  type RestClientErrorOptions,
  type RequestInfo,
} from './errors.js';
export { BroadcastError } from './broadcastError.js';
