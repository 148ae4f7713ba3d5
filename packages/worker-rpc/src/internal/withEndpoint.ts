import { WorkerRpcError, isWorkerRpcError } from '../errors.js';
import type { EndpointHandle } from '../endpointHandle.js';

/**
 * `error` annotated with where it happened (method, endpoint address, attempt); the same object
 * when it already says so. A non-`WorkerRpcError` becomes `INTERNAL`.
 */
export function withEndpoint(
  error: WorkerRpcError,
  endpoint: EndpointHandle,
  method: string,
  attempt: number,
): WorkerRpcError {
  if (!isWorkerRpcError(error)) {
    return new WorkerRpcError('INTERNAL', String((error as Error)?.message ?? error), {
      cause: error,
      endpoint: endpoint.address,
      method: method,
      attempt,
    });
  }
  if (error.endpoint === endpoint.address && error.method === method && error.attempt === attempt)
    return error;
  return new WorkerRpcError(error.code, error.message, {
    cause: error.cause,
    retryable: error.retryable,
    remote: error.remote,
    method: method,
    endpoint: endpoint.address,
    attempt,
    details: error.details,
    ...(error.appCode !== undefined ? { appCode: error.appCode } : {}),
    ...(error.scope !== undefined ? { scope: error.scope } : {}),
    ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
  });
}
