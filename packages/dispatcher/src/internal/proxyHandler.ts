import type { ServerResponse } from 'node:http';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import {
  AbortedError,
  isXError,
  type Logger,
  type TimerEntry,
  type TimerQueue,
} from '@x/resilience';
import { BackendError, DeadlineExceededError, DispatcherError } from '../errors.js';
import { sendError } from './errorResponse.js';
import { HOP_BY_HOP, connectionTokens } from './headers.js';
import type { Instance } from './instance.js';
import { SERVED_BY_HEADER } from './servedByHeader.js';
import type { VersionPool } from './versionPool.js';

/** Largest body sent with its head as one string (copying it is cheaper than a second buffer). */
const SMALL_BODY = 16_384;

/** What a {@link ProxyHandler} labels its answers with and logs to. */
export interface ProxyResponder {
  readonly requestIdHeader: string;
  readonly log: Logger;
  /** The shared timer queue of the dispatcher's clock: request deadlines. */
  readonly timers: TimerQueue;
}

/**
 * Streams an undici response into a Node `ServerResponse`. It is its own entry in the shared
 * {@link TimerQueue} (the deadline for the response head): no timer, closure or abort controller
 * per request.
 */
export class ProxyHandler implements UndiciDispatcher.DispatchHandler, TimerEntry {
  private controller: UndiciDispatcher.DispatchController | undefined;
  private settled = false;
  /** Body bytes announced by `content-length` (-1: unknown), and received so far. */
  private expected = -1;
  private received = 0;
  private ended = false;
  private readonly onClose: () => void;
  private onDrain: (() => void) | undefined;
  /** The request deadline's length, for the 504's message. */
  private timeoutMs = 0;
  // TimerEntry (the deadline for the response head)
  at = Infinity;
  prev: TimerEntry | undefined = undefined;
  next: TimerEntry | undefined = undefined;
  queued = false;

  constructor(
    private readonly door: ProxyResponder,
    private readonly pool: VersionPool,
    private readonly instance: Instance,
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly setCookie: string | undefined,
    private readonly startedAt: number,
  ) {
    this.onClose = () => {
      if (!this.settled) this.controller?.abort(new AbortedError());
    };
    res.on('close', this.onClose);
  }

  /**
   * Settles the request `ms` from now if the instance has not sent its response head by then
   * (504 `DEADLINE_EXCEEDED`, the upstream request aborted): a hung instance never holds a request
   * past its deadline.
   */
  armDeadline(at: number, timeoutMs: number): void {
    this.at = at;
    this.timeoutMs = timeoutMs;
    this.door.timers.insert(this);
  }

  /** The deadline passed before the response head came. */
  fire(): void {
    if (this.settled) return;
    const error = new DeadlineExceededError(
      this.timeoutMs,
      `instance ${this.instance.servedBy} did not answer within the request deadline (${this.timeoutMs} ms)`,
    );
    this.instance.requestTimedOut();
    this.onResponseError(undefined, error);
    this.controller?.abort(error);
  }

  onRequestStart(controller: UndiciDispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed || this.settled) controller.abort(new AbortedError());
  }

  onResponseStart(
    controller: UndiciDispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200 || this.settled) return;
    if (this.queued) this.door.timers.remove(this);
    this.instance.answered();
    const connection = headers.connection;
    const extra =
      connection !== undefined && connection !== 'keep-alive' && connection !== 'close'
        ? connectionTokens(Array.isArray(connection) ? connection.join(',') : connection)
        : undefined;
    // a flat [name, value, …] list: cheaper for writeHead than an object with deleted keys
    const flat: Array<string | string[]> = [];
    for (const name in headers) {
      const value = headers[name];
      if (
        value === undefined ||
        HOP_BY_HOP.has(name) ||
        (extra !== undefined && extra.includes(name))
      )
        continue;
      if (name === 'content-length' && typeof value === 'string') this.expected = Number(value);
      if (name === 'set-cookie' && this.setCookie !== undefined) continue;
      flat.push(name, value);
    }
    flat.push(this.door.requestIdHeader, this.requestId, SERVED_BY_HEADER, this.instance.servedBy);
    if (this.setCookie !== undefined) {
      const existing = headers['set-cookie'];
      flat.push(
        'set-cookie',
        existing === undefined
          ? this.setCookie
          : [...(Array.isArray(existing) ? existing : [existing]), this.setCookie],
      );
    }
    try {
      this.res.writeHead(statusCode, statusMessage || undefined, flat as unknown as string[]);
    } catch (error) {
      controller.abort(
        new BackendError('the instance sent invalid response headers', { cause: error }),
      );
    }
  }

  onResponseData(controller: UndiciDispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.received += chunk.length;
    if (this.received === this.expected) {
      // the whole body is here: head, body and end leave in one write. A small body goes as a
      // latin1 string (bytes unchanged), which Node appends to the head: one plain write instead
      // of a writev of two buffers
      this.ended = true;
      if (chunk.length <= SMALL_BODY && this.received === chunk.length)
        this.res.end(chunk.toString('latin1'), 'latin1');
      else this.res.end(chunk);
      return;
    }
    if (!this.res.write(chunk)) {
      controller.pause();
      this.onDrain ??= () => this.controller?.resume();
      this.res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    if (this.settled) return;
    if (!this.ended) this.res.end();
    this.finish(true);
  }

  onResponseError(
    _controller: UndiciDispatcher.DispatchController | undefined,
    error: Error,
  ): void {
    if (this.settled) return;
    const code = (error as { code?: string }).code;
    const mapped =
      error instanceof DispatcherError || isXError(error)
        ? error
        : code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
          ? (this.instance.requestTimedOut(),
            new DeadlineExceededError(
              0,
              `instance ${this.instance.servedBy} did not answer in time (${code})`,
            ))
          : new BackendError(
              `instance ${this.pool.module}/${this.pool.version}/${this.instance.id} failed: ${code ?? error.message}`,
              { cause: error },
            );
    sendError(this.res, mapped, {
      requestIdHeader: this.door.requestIdHeader,
      requestId: this.requestId,
      servedBy: this.instance.servedBy,
      log: this.door.log,
    });
    this.finish(false);
  }

  private finish(ok: boolean): void {
    if (this.settled) return;
    this.settled = true;
    if (this.queued) this.door.timers.remove(this);
    this.res.off('close', this.onClose);
    this.pool.release(this.instance, ok, this.pool.clock.now() - this.startedAt);
  }
}
