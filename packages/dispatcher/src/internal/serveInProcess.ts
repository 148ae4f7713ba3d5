import type { ServerResponse } from 'node:http';
import {
  AbortedError,
  type Clock,
  type Logger,
  type TimerEntry,
  type TimerQueue,
} from '@x/resilience';
import type { InstanceResponse } from '../backend.js';
import { BackendError, DeadlineExceededError, DispatcherError } from '../errors.js';
import { sendError } from './errorResponse.js';
import type { Forward } from './forwardedRequest.js';
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
  /** The shared timer queue of `clock`: request deadlines. */
  readonly timers: TimerQueue;
}

/**
 * Runs a front-door request on an in-process instance: the handler gets an abort signal that
 * fires when the client goes away or the deadline passes (504 `DEADLINE_EXCEEDED` named in
 * `X-Served-By`), its response is streamed with backpressure, and the slot is released after.
 */
export function serveInProcess(instance: Instance, forward: Forward, ctx: InProcessServing): void {
  new InProcessExchange(instance, forward, ctx).run();
}

/**
 * One in-process exchange. It is its own deadline entry in the shared {@link TimerQueue}, and
 * creates the handler's abort signal only when the handler reads it: a handler that answers at
 * once costs no timer, abort controller or promise race.
 */
class InProcessExchange implements TimerEntry {
  private settled = false;
  private controller: AbortController | undefined;
  /** Why the exchange was aborted (client gone, deadline), once it was. */
  private reason: unknown = undefined;
  private readonly onClose: () => void;
  // TimerEntry (the deadline for the response head)
  at: number;
  prev: TimerEntry | undefined = undefined;
  next: TimerEntry | undefined = undefined;
  queued = false;

  constructor(
    private readonly instance: Instance,
    private readonly forward: Forward,
    private readonly ctx: InProcessServing,
  ) {
    this.at = forward.deadline.at;
    this.onClose = () => {
      if (!forward.res.writableFinished) this.abort(new AbortedError());
    };
  }

  run(): void {
    const { res, method, url, headers, body, sourceIp } = this.forward;
    res.once('close', this.onClose);
    this.ctx.timers.insert(this);
    const handle = this.instance.runtime?.handle;
    if (!handle) {
      this.fail(new BackendError(`instance ${this.instance.id} is not running`));
      return;
    }
    const request = new InProcessRequest(
      method,
      url,
      headers,
      body as AsyncIterable<Uint8Array> | null,
      sourceIp,
      'normal',
      this.instance.context,
      this,
      this.ctx.maxBodyBytes,
    );
    let result: InstanceResponse | Promise<InstanceResponse>;
    try {
      result = handle(request);
    } catch (error) {
      this.fail(this.handlerFailure(error));
      return;
    }
    if (isThenable(result))
      result.then(
        response => this.respond(response),
        (error: unknown) => this.fail(this.handlerFailure(error)),
      );
    else this.respond(result);
  }

  /** The handler's signal, created on first use (already aborted when the exchange is). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** The deadline passed before the response head went out. */
  fire(): void {
    const { timeoutMs } = this.forward.deadline;
    this.abort(
      new DeadlineExceededError(
        timeoutMs,
        `instance ${this.instance.servedBy} did not answer within the request deadline (${timeoutMs} ms)`,
      ),
    );
  }

  private abort(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
    // before the head: answered now (504, or the response destroyed for a client gone); while a
    // body streams, the stream loop stops at its next chunk
    if (!this.forward.res.headersSent) this.fail(reason);
  }

  private handlerFailure(error: unknown): unknown {
    if (error instanceof DispatcherError) return error;
    this.instance.context.log.error({ err: error }, 'in-process handler failed');
    return new BackendError('the in-process handler failed', { cause: error });
  }

  private respond(result: InstanceResponse): void {
    if (this.settled) return; // answered already (deadline, client gone)
    const { res, requestId, decision } = this.forward;
    const ctx = this.ctx;
    let status: number;
    let body: string | Uint8Array | AsyncIterable<Uint8Array> | null;
    const flat: string[] = [];
    try {
      const response = normalizeResponse(result, true);
      status = response.status;
      body = response.body;
      for (const [name, value] of response.headers) {
        if (HOP_BY_HOP.has(name)) continue;
        flat.push(name, value);
      }
      flat.push(ctx.requestIdHeader, requestId, SERVED_BY_HEADER, this.instance.servedBy);
      if (decision.setCookie) flat.push('set-cookie', decision.setCookie);
      if (typeof body === 'string') flat.push('content-length', String(Buffer.byteLength(body)));
      else if (body instanceof Uint8Array) flat.push('content-length', String(body.byteLength));
      else if (body === null) flat.push('content-length', '0');
      if (this.queued) ctx.timers.remove(this); // the head is out: a stream may outlast the deadline
      res.writeHead(status, response.reason, flat);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (body === null) res.end();
    // a string body leaves with the head in one write
    else if (typeof body === 'string' || body instanceof Uint8Array) res.end(body);
    else {
      void this.stream(body, status);
      return;
    }
    this.finish(status < 500);
  }

  private async stream(body: AsyncIterable<Uint8Array>, status: number): Promise<void> {
    const { res } = this.forward;
    try {
      for await (const chunk of body) {
        if (res.destroyed || this.reason !== undefined) break;
        if (!res.write(chunk)) await drained(res);
      }
      res.end();
    } catch (error) {
      this.fail(this.reason ?? error);
      return;
    }
    this.finish(status < 500);
  }

  /** Answers `error` (or cuts the response once its head is out) and releases the slot. */
  private fail(error: unknown): void {
    if (this.settled) return;
    sendError(this.forward.res, this.reason ?? error, {
      requestIdHeader: this.ctx.requestIdHeader,
      requestId: this.forward.requestId,
      servedBy: this.instance.servedBy,
      log: this.ctx.log,
    });
    this.finish(false);
  }

  private finish(ok: boolean): void {
    if (this.settled) return;
    this.settled = true;
    const { pool, res, startedAt } = this.forward;
    if (this.queued) this.ctx.timers.remove(this);
    res.off('close', this.onClose);
    pool.release(this.instance, ok, this.ctx.clock.now() - startedAt);
  }
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
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
