export { startTestServer, startTestServers } from './testServer.js';
export type {
  RecordedRequest,
  ScriptedResponse,
  ScriptStep,
  TestServer,
  TestServerOptions,
} from './testServer.js';
export { startFaultProxy } from './faultProxy.js';
export type { FaultMode, FaultProxy, FaultProxyOptions } from './faultProxy.js';
export { freePort } from './freePort.js';
export { waitFor } from './waitFor.js';
export type { WaitForOptions } from './waitFor.js';
export { startNodeProcess } from './childProcess.js';
export type { NodeProcess, NodeProcessOptions } from './childProcess.js';
export { startRedisServer } from './redisServer.js';
export type { RedisServer, RedisServerOptions } from './redisServer.js';
export { captureWarnings } from './captureWarnings.js';
export type { CapturedWarnings } from './captureWarnings.js';
export { startOtlpReceiver, otlpTraceRequestType } from './otlpReceiver.js';
export type { OtlpReceiver, ReceivedSpan } from './otlpReceiver.js';
export { noopTracing } from './noopTracing.js';
export type { NoopTracing } from './noopTracing.js';
