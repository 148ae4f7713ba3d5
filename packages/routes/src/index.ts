// Routes, workers, outcomes
export { Route, route } from './route.js';
export type {
  InferredRouteOptions,
  RouteInput,
  RouteOptions,
  Target,
  TargetFn,
  TargetClass,
  Callbacks,
  CallbackTarget,
} from './routeOptions.js';
export type { FailureEvent, SuccessEvent, SettledEvent, RouteEvent } from './routeEvent.js';
export type { DrainReport, StopOptions } from './drainReport.js';
export { CallbackRoute, type CallbackRouteOptions } from './callbackRoute.js';
export { RouteWorker, type RouteWorkerInit, type RouteWorkerClass } from './routeWorker.js';
export { CallbackWorker, type CallbackWorkerClass } from './callbackWorker.js';
export type { RouteRuntime, CallbackKind } from './routeRuntime.js';
export type { WorkerContext } from './workerContext.js';
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
export {
  RunnerContext,
  type RunnerContextOptions,
  type RunnerEnv,
  type ContextRoute,
} from './runnerContext.js';

// Entrypoints, settlement, dead letters
export type {
  Entrypoint,
  EntryRef,
  RouteHandle,
  Delivery,
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
  type BullmqJobInfo,
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
  MessageDeadlineError,
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
