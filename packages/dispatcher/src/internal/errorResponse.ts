import type { ServerResponse } from 'node:http';
import { isXError, type Logger } from '@x/resilience';
import { DispatcherError, NoCapacityError, TooManyAttemptsError } from '../errors.js';
import { SERVED_BY_HEADER } from './servedByHeader.js';

/** `Content-Type` of every answer the front door writes itself. */
export const JSON_TYPE = 'application/json; charset=utf-8';

/** How {@link sendError} labels and closes its answer. */
export interface ErrorResponseOptions {
  readonly requestIdHeader: string;
  readonly requestId: string | undefined;
  /** `module/version/instance` of the instance that failed, when one did. */
  readonly servedBy?: string;
  /** Close the connection after the answer (a refused request whose body cannot be trusted). */
  readonly close?: boolean;
  /** Where an unexpected (non-dispatcher) error is logged. */
  readonly log: Logger;
}

/**
 * Answers `error` as `{"error":{code,message},requestId}` with the error's status (500 `INTERNAL`
 * for anything that is not a `DispatcherError`, logged), or cuts the response when its head is
 * already out. An aborted request (the client went away) is destroyed, never answered.
 */
export function sendError(
  res: ServerResponse,
  error: unknown,
  options: ErrorResponseOptions,
): void {
  if (res.headersSent || res.destroyed || isXError(error, 'ABORTED')) {
    res.destroy();
    return;
  }
  let status = 500;
  let code = 'INTERNAL';
  let message = 'internal error';
  if (error instanceof DispatcherError) {
    status = error.status;
    code = error.code;
    message = error.message;
  } else {
    options.log.error({ err: error }, 'front door failure');
  }
  const { requestId } = options;
  const headers: Record<string, string> = {
    'content-type': JSON_TYPE,
    'cache-control': 'no-store',
  };
  if (requestId !== undefined) headers[options.requestIdHeader] = requestId;
  if (options.servedBy !== undefined) headers[SERVED_BY_HEADER] = options.servedBy;
  if (error instanceof NoCapacityError || error instanceof TooManyAttemptsError)
    headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
  if (options.close || !res.req.complete) headers.connection = 'close';
  const body = JSON.stringify({ error: { code, message }, requestId });
  headers['content-length'] = String(Buffer.byteLength(body));
  try {
    res.writeHead(status, headers);
    res.end(body);
  } catch {
    res.destroy();
  }
}

/** Answers `body` as JSON (not cached); nothing when the head is already out. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': JSON_TYPE,
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(text)),
    ...extra,
  });
  res.end(text);
}

/** Writes a JSON error answer straight onto a socket (no `ServerResponse`) and closes it. */
export function sendSocketError(
  socket: { writable: boolean; end(data: string): unknown; destroySoon?: () => void },
  status: number,
  reason: string,
  error: { readonly code: string; readonly message: string },
  extra: Record<string, string> = {},
): void {
  if (!socket.writable) return;
  const body = JSON.stringify({ error });
  let head = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(extra)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}Connection: close\r\n\r\n${body}`);
  socket.destroySoon?.();
}
