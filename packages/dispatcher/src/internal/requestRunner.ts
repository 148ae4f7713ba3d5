import { randomUUID } from 'node:crypto';
import {
  AbortedError,
  DEADLINE_HEADER,
  deadlineHeaderValue,
  readDeadlineHeader,
  timeoutSignal,
  type Clock,
} from '@x/resilience';
import type { BackgroundRequestOptions } from '../dispatcher.js';
import {
  BackgroundThreadLimitReachedError,
  DeadlineExceededError,
  InvalidInstanceIdError,
  InvalidRequestError,
  NoCapacityError,
  VersionStoppedError,
  DispatcherClosedError,
} from '../errors.js';
import type { RouteDecision } from '../routeDecision.js';
import type { DispatchRequest, ResponseTuple } from '../types.js';
import { bodyToIterable } from './body.js';
import { durationOption } from './durationOption.js';
import { exchangeToTuple, type ExchangeLimits, type PreparedRequest } from './exchange.js';
import { getHeader, isMethod, toHeaderList } from './headers.js';
import type { Instance } from './instance.js';
import type { Router } from './router.js';
import type { Deadline, VersionPool } from './versionPool.js';

/** Source address of requests that name none (App Engine's). */
export const DEFAULT_SOURCE_IP = '0.1.0.1';
const BACKGROUND_SOURCE_IP = '0.1.0.3';

/** What a {@link RequestRunner} needs from its dispatcher. */
export interface RequestRunnerHost {
  readonly clock: Clock;
  readonly router: Router;
  readonly requestTimeoutMs: number;
  readonly backgroundTimeoutMs: number;
  readonly limits: ExchangeLimits;
  readonly closed: boolean;
  start(): Promise<void>;
  pool(decision: RouteDecision): VersionPool;
  controllable(module: string, version: string, operation: string): VersionPool;
}

/**
 * The programmatic request paths (`addRequest`, `sendBackgroundRequest`): a request checked and
 * routed, an instance slot taken within the deadline, the exchange collected into a
 * {@link ResponseTuple}, the slot released with the outcome (health, balancer, metrics).
 */
export class RequestRunner {
  constructor(private readonly host: RequestRunnerHost) {}

  /** Checks and routes a request (typed `INVALID_REQUEST` / routing errors, synchronously). */
  prepare(request: DispatchRequest): {
    decision: RouteDecision;
    prepared: PreparedRequest;
  } {
    if (typeof request !== 'object' || request === null)
      throw new InvalidRequestError('request must be an object');
    const method = request.method ?? 'GET';
    if (typeof method !== 'string' || !isMethod(method))
      throw new InvalidRequestError(`invalid method ${JSON.stringify(method)}`);
    const url = request.url;
    if (
      typeof url !== 'string' ||
      url.charCodeAt(0) !== 47 ||
      url.length > 65_536 ||
      /[\s\0]/.test(url)
    )
      throw new InvalidRequestError(
        'url must be a path starting with / (no spaces or control characters)',
      );
    const sourceIp = request.sourceIp ?? DEFAULT_SOURCE_IP;
    if (typeof sourceIp !== 'string') throw new InvalidRequestError('sourceIp must be a string');
    for (const key of ['module', 'version', 'instance'] as const) {
      const value = request[key];
      if (value !== undefined && typeof value !== 'string')
        throw new InvalidRequestError(`${key} must be a string`);
    }
    const headers = toHeaderList(request.headers);
    const q = url.indexOf('?');
    const decision = this.host.router.resolve(
      {
        path: q < 0 ? url : url.slice(0, q),
        host: getHeader(headers, 'host'),
        cookie: getHeader(headers, 'cookie'),
        sourceIp,
        headers: () => headers,
        target: request,
      },
      false,
    );
    if (getHeader(headers, 'x-forwarded-for') === undefined)
      headers.push(['x-forwarded-for', sourceIp]);
    if (getHeader(headers, 'x-request-id') === undefined)
      headers.push(['x-request-id', randomUUID()]);
    const body = bodyToIterable(request.body);
    return { decision, prepared: { method, url, headers, body, sourceIp, kind: 'normal' } };
  }

  /** `addRequest`: routes, waits for an instance within the deadline, collects the response. */
  async run(request: DispatchRequest): Promise<ResponseTuple> {
    if (this.host.closed) throw new DispatcherClosedError();
    const { decision, prepared } = this.prepare(request);
    const ownMs =
      request.timeoutMs === undefined
        ? this.host.requestTimeoutMs
        : durationOption(request.timeoutMs, 'timeoutMs', { exclusiveMin: true, request: true });
    // a budget in the request's headers (x-request-timeout-ms) shortens the deadline
    const headerMs = readDeadlineHeader(
      { [DEADLINE_HEADER]: prepared.headers.filter(h => h[0] === DEADLINE_HEADER).map(h => h[1]) },
      { maxMs: ownMs },
    );
    if (headerMs === 0) throw new DeadlineExceededError(0); // the caller stopped waiting already
    const timeoutMs = headerMs ?? ownMs;
    if (request.signal?.aborted) throw new AbortedError({ cause: request.signal.reason });
    await this.host.start();
    const pool = this.host.pool(decision);
    const startedAt = this.host.clock.now();
    const deadline: Deadline = { at: startedAt + timeoutMs, timeoutMs };
    const { signal, clear } = timeoutSignal(
      this.host.clock,
      timeoutMs,
      () => new DeadlineExceededError(timeoutMs),
      request.signal,
    );
    let instance: Instance | undefined;
    let ok = false;
    try {
      instance =
        decision.instance !== undefined
          ? await pool.acquireInstance(decision.instance, deadline, signal)
          : await pool.acquire(deadline, signal);
      const tuple = await exchangeToTuple(
        instance,
        withBudget(prepared, deadline.at - this.host.clock.now()),
        this.host.limits,
        signal,
      );
      ok = tuple.status < 500;
      instance.answered();
      if (decision.setCookie) tuple.headers.push(['set-cookie', decision.setCookie]);
      return tuple;
    } catch (error) {
      // the instance held the request past its deadline: counts towards passive ejection
      if (instance !== undefined && signal.reason instanceof DeadlineExceededError)
        instance.requestTimedOut();
      throw signal.aborted ? abortFailure(signal.reason) : error;
    } finally {
      clear();
      if (instance) {
        const durationMs = this.host.clock.now() - startedAt;
        pool.release(instance, ok, durationMs);
      }
    }
  }

  /** `sendBackgroundRequest`: `GET /_ah/background` on a background slot of one instance. */
  async background(
    module: string,
    version: string,
    instance: string,
    backgroundRequestId: string,
    options: BackgroundRequestOptions = {},
  ): Promise<ResponseTuple> {
    if (this.host.closed) throw new DispatcherClosedError();
    const pool = this.host.controllable(module, version, 'sendBackgroundRequest');
    if (
      typeof backgroundRequestId !== 'string' ||
      backgroundRequestId === '' ||
      /[\r\n\0]/.test(backgroundRequestId)
    )
      throw new InvalidRequestError(
        'backgroundRequestId must be a non-empty string without line breaks',
      );
    const target = pool.instances.get(instance);
    if (!target) throw new InvalidInstanceIdError(module, version, String(instance));
    await this.host.start();
    if (pool.stopped) throw new VersionStoppedError(module, version);
    const timeoutMs =
      options.timeoutMs === undefined
        ? this.host.backgroundTimeoutMs
        : durationOption(options.timeoutMs, 'timeoutMs', { exclusiveMin: true, request: true });
    if (target.state !== 'ready') {
      const ready =
        target.state === 'stopped' && pool.kind === 'basic'
          ? target.start('start')
          : target.whenReady();
      if (!ready)
        throw new NoCapacityError(
          `instance ${instance} of ${module}/${version} is ${target.state}`,
          'instances',
          1_000,
        );
      await ready;
    }
    if (!target.reserveBackground())
      throw new BackgroundThreadLimitReachedError(
        module,
        version,
        instance,
        pool.spec.maxBackgroundThreads,
      );
    const { signal, clear } = timeoutSignal(
      this.host.clock,
      timeoutMs,
      () => new DeadlineExceededError(timeoutMs),
      options.signal,
    );
    try {
      return await exchangeToTuple(
        target,
        {
          method: 'GET',
          url: '/_ah/background',
          headers: [
            ['x-appengine-backgroundrequest', backgroundRequestId],
            ['x-forwarded-for', BACKGROUND_SOURCE_IP],
          ],
          body: null,
          sourceIp: BACKGROUND_SOURCE_IP,
          kind: 'background',
        },
        this.host.limits,
        signal,
      );
    } catch (error) {
      throw signal.aborted ? abortFailure(signal.reason) : error;
    } finally {
      clear();
      target.releaseBackground();
    }
  }
}

/** What a call aborted by `reason` fails with: its deadline, or `AbortedError` for anything else. */
function abortFailure(reason: unknown): Error {
  return reason instanceof DeadlineExceededError ? reason : new AbortedError({ cause: reason });
}

/** The request with its remaining budget (after queueing) in `DEADLINE_HEADER`, replacing any. */
function withBudget(prepared: PreparedRequest, remainingMs: number): PreparedRequest {
  if (!(remainingMs > 0) || remainingMs === Infinity) return prepared;
  const headers = prepared.headers.filter(h => h[0] !== DEADLINE_HEADER);
  headers.push([DEADLINE_HEADER, deadlineHeaderValue(remainingMs)]);
  return { ...prepared, headers };
}
