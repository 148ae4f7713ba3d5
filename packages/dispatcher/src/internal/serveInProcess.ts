import type { ServerResponse } from 'node:http';
import { AbortedError, type Clock, type Logger } from '@x/resilience';
import { BackendError, DeadlineExceededError, DispatcherError } from '../errors.js';
import { sendError } from './errorResponse.js';
import { pairs, type Forward } from './forwardedRequest.js';
import { HOP_BY_HOP } from './headers.js';
import { InProcessRequest, normalizeResponse } from './inProcessRequest.js';
import type { Instance } from './instance.js';
import { SERVED_BY_HEADER } from './servedByHeader.js';

/** What {@link serveInProcess} needs besides the request. */
export interface InProcessServing {
  readonly clock: Clock;
  readonly log: Logger;
  readonly requestIdHeader: string;
  readonly maxBodyBytes: number;
}

/**
 * Runs a front-door request on an in-process instance: the handler gets an abort signal that
 * fires when the client goes away or the deadline passes (504 `DEADLINE_EXCEEDED` named in
 * `X-Served-By`), its response is streamed with backpressure, and the slot is released after.
 */
export async function serveInProcess(
  instance: Instance,
  forward: Forward,
  ctx: InProcessServing,
): Promise<void> {
  const { pool, res, method, url, headers, body, requestId, decision, sourceIp, startedAt } =
    forward;
  const { deadline } = forward;
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new AbortedError());
  };
  res.once('close', onClose);
  const clock = ctx.clock;
  const timer = clock.setTimeout(
    () => {
      abort.abort(
        new DeadlineExceededError(
          deadline.timeoutMs,
          `instance ${instance.servedBy} did not answer within the request deadline (${deadline.timeoutMs} ms)`,
        ),
      );
    },
    Math.max(0, deadline.at - clock.now()),
  );
  timer.unref?.();
  let ok = false;
  try {
    const handle = instance.runtime?.handle;
    if (!handle) throw new BackendError(`instance ${instance.id} is not running`);
    const request = new InProcessRequest(
      method,
      url,
      pairs(headers),
      body as AsyncIterable<Uint8Array> | null,
      sourceIp,
      'normal',
      instance.context,
      abort.signal,
      ctx.maxBodyBytes,
    );
    let result;
    try {
      result = await untilAborted(Promise.resolve(handle(request)), abort.signal);
    } catch (error) {
      if (error instanceof DispatcherError) throw error;
      instance.context.log.error({ err: error }, 'in-process handler failed');
      throw new BackendError('the in-process handler failed', { cause: error });
    }
    const response = normalizeResponse(result);
    const flat: string[] = [];
    for (const [name, value] of response.headers) {
      if (HOP_BY_HOP.has(name)) continue;
      flat.push(name, value);
    }
    flat.push(ctx.requestIdHeader, requestId, SERVED_BY_HEADER, instance.servedBy);
    if (decision.setCookie) flat.push('set-cookie', decision.setCookie);
    const out = response.body;
    if (out instanceof Uint8Array) flat.push('content-length', String(out.byteLength));
    else if (out === null) flat.push('content-length', '0');
    clock.clearTimeout(timer); // the head is out: a stream may outlast the deadline
    res.writeHead(response.status, response.reason, flat);
    if (out === null) res.end();
    else if (out instanceof Uint8Array) res.end(out);
    else {
      for await (const chunk of out) {
        if (res.destroyed) break;
        if (!res.write(chunk)) await drained(res);
      }
      res.end();
    }
    ok = response.status < 500;
  } catch (error) {
    sendError(res, abort.signal.aborted ? abort.signal.reason : error, {
      requestIdHeader: ctx.requestIdHeader,
      requestId,
      servedBy: instance.servedBy,
      log: ctx.log,
    });
  } finally {
    clock.clearTimeout(timer);
    res.off('close', onClose);
    pool.release(instance, ok, clock.now() - startedAt);
  }
}

/** Resolves once `res` drains or closes. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>(resolve => {
    const go = () => {
      res.off('drain', go);
      res.off('close', go);
      resolve();
    };
    res.on('drain', go);
    res.on('close', go);
  });
}

/** Settles like `promise`, or rejects with the signal's reason once it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      value => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      error => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}
