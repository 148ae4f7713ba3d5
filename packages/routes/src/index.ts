// Routes, workers, outcomes
export {
  Route,
  route,
  type RouteOptions,
  type InferredRouteOptions,
  type RouteInput,
  type Target,
  type TargetFn,
  type TargetClass,
  type Callbacks,
  type CallbackTarget,
  type FailureEvent,
  type SuccessEvent,
  type SettledEvent,
  type RouteEvent,
  type DrainReport,
  type StopOptions,
} from './route.js';
export { CallbackRoute, type CallbackRouteOptions } from './callbackRoute.js';
export {
  Worker,
  CallbackWorker,
  type WorkerInit,
  type WorkerClass,
  type CallbackWorkerClass,
  type CallbackKind,
} from './worker.js';
export type { WorkerContext, Delivery } from './workerContext.js';
export type {
  Outcome,
  SuccessOutcome,
  FailureOutcome,
  DeferredOutcome,
  CancelledOutcome,
  FailureReason,
  Meta,
} from './outcome.js';

// Translators
export {
  chain,
  translator,
  json,
  text,
  schema,
  type Translator,
  type TranslatorFn,
  type TranslatorLike,
  type TranslatorInput,
  type TranslatorOutput,
  type ChainOutput,
  type ValidChain,
  type SchemaLike,
  type StandardSchemaLike,
} from './translator.js';
export {
  validator,
  type Validator,
  type ValidationIssue,
  type IssuePath,
  type Refuse,
} from './validator.js';

// Backoff
export {
  BackoffPolicy,
  syncBackoff,
  asyncBackoff,
  type BackoffOptions,
  type AsyncBackoffOptions,
  type ErrorClass,
  type ErrorMatcher,
  type RetryTools,
} from './backoffPolicy.js';

// Dependencies, runner
export type { Dependency, DependencyMap, DepsOf } from './dependency.js';
export { Runner, type RunnerOptions } from './runner.js';
export { RunnerContext, type RunnerContextOptions, type RunnerEnv } from './runnerContext.js';

// Entrypoints, settlement, dead letters
export type {
  Entrypoint,
  EntryRef,
  RouteHandle,
  RepublishPayload,
  StartRouteOptions,
  MessageOf,
} from './entrypoint.js';
export {
  queueSettlement,
  type QueueSettlement,
  type QueueSettlementOptions,
} from './settlement.js';
export {
  MemoryDeadLetters,
  type DeadLetterRecord,
  type DeadLetterSink,
  type MemoryDeadLettersOptions,
  type SerializedError,
} from './deadLetter.js';
export {
  HttpEntrypoint,
  httpEntrypoint,
  httpStatusFor,
  type HttpEntrypointOptions,
  type HttpExchange,
  type HttpMeta,
} from './httpEntrypoint.js';
export {
  HttpRouter,
  httpRouter,
  type HttpMatch,
  type HttpMount,
  type PathParams,
} from './httpRouter.js';
export { httpStatusForError, HTTP_STATUS_BY_CODE } from './httpStatusForError.js';
export {
  TimerEntrypoint,
  timerEntrypoint,
  type TimerEntrypointOptions,
  type TimerTick,
} from './timerEntrypoint.js';
export {
  MemoryQueue,
  memoryQueue,
  type MemoryQueueOptions,
  type PublishOptions,
  type QueueRecord,
} from './memoryQueue.js';
export {
  BullmqEntrypoint,
  bullmqEntrypoint,
  type BullmqEntrypointOptions,
  type BullmqPublishOptions,
} from './bullmqEntrypoint.js';

// Testing
export {
  testRoute,
  type TestRouteOptions,
  type RouteTester,
  type TestDelivery,
  type AttemptRecord,
  type RetryRecord,
  type CallbackRecord,
} from './testRoute.js';

// Errors
export {
  RoutesError,
  DeadlineExceededError,
  RouteConfigError,
  RouteStoppedError,
  TranslationError,
  CancelledError,
  DependencyError,
  RepublishError,
  QueueFullError,
  HttpRequestError,
  OptionalDependencyError,
  BrokerUnavailableError,
  type RoutesErrorCode,
  type TranslationIssue,
} from './errors.js';

// Backoff factories from @x/resilience, re-exported so one import builds a route
export { constantBackoff, linearBackoff, exponentialBackoff } from '@x/resilience';
