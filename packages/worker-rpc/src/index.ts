// Client
export { createWorkerConnection, WorkerConnection } from './workerConnection.js';
export { PROXY_RESERVED_NAMES } from './internal/proxy.js';
export type {
  WorkerConnectionOptions,
  CallOptions,
  MethodOptions,
  WorkerRetryOptions,
  DrainOptions,
  WorkerConnectionEvent,
} from './workerConnectionOptions.js';
export { EndpointHandle, type EndpointState, type EndpointStats } from './endpointHandle.js';
export { parseAddresses } from './parseAddresses.js';
export { optionsFromEnv } from './optionsFromEnv.js';
export { leastOutstanding, type LeastOutstandingOptions } from './leastOutstanding.js';
export type {
  Client,
  Handlers,
  HandlerTree,
  InvokeArgs,
  MethodAt,
  MethodPath,
  ParamsOf,
  ProxyMethod,
  ResultOf,
  UntypedApi,
  UntypedProxy,
} from './api.js';

// Transports
export type {
  Transport,
  Channel,
  ChannelEvents,
  ChannelContext,
  ChannelState,
  OutgoingRequest,
  ReplyFrame,
} from './transport.js';
export { zmqTransport, type ZmqTransportOptions, type ZmqClientCurve } from './zmqTransport.js';
export { httpTransport, errorFromStatus, type HttpTransportOptions } from './httpTransport.js';
export { validateAddress, type AddressUse } from './validateAddress.js';

// Worker side
export {
  createWorker,
  Worker,
  type WorkerOptions,
  type HandlerContext,
  type DedupeOptions,
} from './worker.js';
export { resolveHandler, type ResolvedHandler } from './resolveHandler.js';
export type { WorkerState, WorkerStatus } from './workerStatus.js';
export { asynchronous, isAsynchronous } from './asynchronous.js';
export type {
  WorkerTransport,
  WorkerSink,
  IncomingRequest,
  ResponseInfo,
} from './workerTransport.js';
export {
  zmqWorkerTransport,
  type ZmqWorkerTransportOptions,
  type ZmqWorkerCurve,
} from './zmqWorkerTransport.js';
export {
  httpWorkerTransport,
  statusForCode,
  type HttpWorkerTransportOptions,
} from './httpWorkerTransport.js';

// Routers
export {
  createBroker,
  Broker,
  type BrokerOptions,
  type BrokerStatus,
  type BrokerWorkerStatus,
} from './broker.js';
export { createQueueDevice, QueueDevice, type QueueDeviceOptions } from './queueDevice.js';
export {
  createWorkerService,
  type WorkerService,
  type WorkerServiceOptions,
} from './workerService.js';

// Wire protocol, codecs, compression
export {
  PROTOCOL_VERSION,
  Kind,
  KIND_NAMES,
  FLAG_IDEMPOTENT,
  FLAG_COMPRESSED,
  FLAG_ACK,
  FIXED_HEADER_BYTES,
  MIN_HEADER_BYTES,
  MAX_HEADER_BYTES,
  ID_BYTES,
  CREDIT_UNKNOWN,
  MAX_BUDGET_MS,
  MAX_META_ENTRIES,
  encodeHeader,
  decodeHeader,
  peekId,
  idKey,
  idHex,
  setHeaderBudget,
  setHeaderCredit,
  type KindValue,
  type WireHeader,
  type HeaderFields,
} from './protocol.js';
export {
  jsonCodec,
  msgpackCodec,
  resolveCodec,
  type Codec,
  type MsgpackCodecOptions,
} from './codec.js';
export {
  gzip,
  deflate,
  brotli,
  resolveCompressor,
  type Compressor,
  type CompressionOptions,
  type CompressionOption,
} from './compression.js';

// Errors
export {
  WorkerRpcError,
  isWorkerRpcError,
  TOTO_ERROR_NAMES,
  appCodeName,
  toWireError,
  fromWireError,
  toTotoError,
  fromTotoError,
  type WorkerRpcErrorCode,
  type WorkerRpcErrorOptions,
  type WireError,
} from './errors.js';
