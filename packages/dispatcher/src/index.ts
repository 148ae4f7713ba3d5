// The dispatcher
export {
  createDispatcher,
  type Dispatcher,
  type DispatcherOptions,
  type DispatcherStats,
  type RulesOption,
  type ListenOptions,
  type HttpFrontDoor,
  type FrontDoorOptions,
  type MountedFrontDoor,
  type AsyncRequest,
  type BackgroundRequestOptions,
  type EventHandle,
  type EventHandler,
  type EventRunnable,
  type VersionStats,
} from './createDispatcher.js';
export {
  createFakeDispatcher,
  type FakeDispatcher,
  type FakeDispatcherOptions,
  type FakeModule,
} from './fakeDispatcher.js';
export type { DispatcherEvent, InstanceRef } from './dispatcherEvent.js';

// Modules, versions, scaling
export type {
  ModuleSpec,
  VersionSpec,
  Scaling,
  ManualScaling,
  BasicScaling,
  AutomaticScaling,
  Lifecycle,
  HealthCheck,
  RestartPolicy,
} from './versionSpec.js';
export {
  gaePolicy,
  type AutoscalePolicy,
  type AutoscaleInput,
  type ScaleDecision,
} from './autoscalePolicy.js';

// Backends
export type {
  Backend,
  RuntimeProxy,
  InstanceContext,
  InstanceExit,
  InstanceRequest,
  InstanceResponse,
  InProcessHandler,
} from './backend.js';
export { inProcess, type InProcessOptions } from './backends/inProcess.js';
export { childProcess, type ChildProcessOptions } from './backends/childProcess.js';
export { remote, type RemoteOptions } from './backends/remote.js';

// Routing
export {
  compileDispatchRules,
  parseDispatchYaml,
  DispatchRuleSet,
  noDispatchRules,
  type DispatchRule,
  type CompiledDispatchRule,
  type DispatchRuleOptions,
} from './dispatchRules.js';
export {
  DispatchRuleSchema,
  DispatchFileSchema,
  DISPATCH_SCHEMA_ID,
  MODULE_NAME_PATTERN,
  dispatchJsonSchema,
  type DispatchFile,
} from './dispatchSchema.js';
export { parseHostHeader, isHostLabel, type HostHeaderMatch } from './hostHeader.js';
export {
  CompiledSplit,
  bucketOf,
  SPLIT_BUCKETS,
  type TrafficSplit,
  type StickyBy,
} from './trafficSplit.js';
export type { RouteDecision, ModuleSource, VersionSource } from './routeDecision.js';

// Events
export { memoryEventStore, type EventStore, type StoredEvent } from './eventStore.js';
export { redisEventStore, type RedisEventStoreOptions, type RedisLike } from './redisEventStore.js';

// Values
export type {
  ModuleName,
  VersionId,
  InstanceId,
  HeaderList,
  HeadersInput,
  BodyInput,
  DispatchTarget,
  DispatchRequest,
  ResponseTuple,
  RequestKind,
  InstanceState,
  InstanceHealth,
  InstanceInfo,
} from './types.js';
export { responseText, responseJson, responseHeaders, toFetchResponse } from './responseTuple.js';

// Errors
export {
  DispatcherError,
  ModuleDoesNotExistError,
  VersionDoesNotExistError,
  InvalidInstanceIdError,
  NotSupportedWithAutoScalingError,
  BackgroundThreadLimitReachedError,
  VersionAlreadyStartedError,
  VersionAlreadyStoppedError,
  VersionStoppedError,
  NoCapacityError,
  DeadlineExceededError,
  InvalidDispatchRuleError,
  InvalidRequestError,
  PayloadTooLargeError,
  TooManyAttemptsError,
  TooManyHeadersError,
  BackendError,
  InstanceStartError,
  InvalidConfigError,
  EventLimitReachedError,
  MissingDependencyError,
  EventStoreUnavailableError,
  DispatcherClosedError,
  type DispatcherErrorCode,
  type CapacityDimension,
} from './errors.js';
export { HOP_BY_HOP as HOP_BY_HOP_HEADERS } from './internal/headers.js';
export { ADMIN_BODY_LIMIT } from './internal/adminGate.js';
export { MAX_REQUEST_HEADERS } from './internal/forwardedRequest.js';
export { SERVED_BY_HEADER } from './internal/servedByHeader.js';
