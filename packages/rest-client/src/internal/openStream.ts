import type { TimerQueue, TraceSpan } from '@x/resilience';
import type { Readable } from 'node:stream';
import { ClosedError, isRestClientError, type RestClientError } from '../errors.js';
import type { ResponseHeaders } from '../restResponse.js';
import { CallLink, abortReason } from './callLink.js';
import type { CallSpec } from './callSpec.js';
import { endTrySpan, requestTracer, startTrySpan } from './requestTracer.js';
import { toRestClientError, type FailureContext } from './errorMapping.js';
import { Exchange } from './exchange.js';
import type { HostPool } from './hostPool.js';

/** A response whose body is a stream, from the streaming escape hatch. */
export interface StreamResponse {
  readonly host: string;
  readonly status: number;
  readonly reason: string;
  readonly headers: ResponseHeaders;
  /** The body: consume it (or call `destroy()`), or the connection is never reused. */
  readonly body: Readable;
  readonly ok: boolean;
}

/** What {@link openStream} needs from the client (handed in: the engine). */
export interface StreamTries {
  readonly closed: boolean;
  now(): number;
  readonly deadlines: TimerQueue;
  readonly failureContext: FailureContext;
  wireHeaders(
    spec: CallSpec,
    ex: Exchange,
    span?: TraceSpan,
  ): Readonly<Record<string, string>> | string[] | undefined;
  /** A try goes on the wire (load, probe bookkeeping). */
  started(host: HostPool): void;
  /** A try ended (load, health, metrics). */
  finish(host: HostPool, start: number, status: number, failure: RestClientError | undefined): void;
  /** A stale-connection replay. */
  replay(
    host: HostPool,
    spec: CallSpec,
    error: RestClientError | undefined,
    status: undefined,
  ): void;
}

/** The streaming escape hatch: one try (plus a stale-connection replay), body left to the caller. */
export async function openStream(
  tries: StreamTries,
  host: HostPool,
  spec: CallSpec,
): Promise<StreamResponse> {
  if (tries.closed)
    throw new ClosedError({ host: host.origin, method: spec.method, path: spec.path });
  const startedAt = tries.now();
  spec.startedAt = startedAt;
  spec.deadline = spec.totalMs === Infinity ? Infinity : startedAt + spec.totalMs;
  let link: CallLink | undefined;
  if (spec.signal !== undefined) {
    if (spec.signal.aborted) throw abortReason(spec.signal, spec);
    link = new CallLink(spec.signal, spec);
  }
  for (let attempt = 1; ; attempt++) {
    const ex = new Exchange(spec, host.origin, attempt);
    link?.track(ex);
    const start = tries.now();
    let at = spec.deadline;
    if (spec.perTryMs !== Infinity && start + spec.perTryMs < at) {
      at = start + spec.perTryMs;
      ex.phase = 'try';
    }
    ex.at = at;
    tries.deadlines.insert(ex);
    tries.started(host);
    // Traced: a client span per try, ended when the caller's body closes.
    const span = requestTracer.enabled ? startTrySpan(spec, ex) : undefined;
    let data;
    try {
      data = await ex.request(host.pool, {
        method: spec.method,
        path: spec.path,
        headers: tries.wireHeaders(spec, ex, span),
        body: spec.body,
        signal: ex,
      });
    } catch (error) {
      tries.deadlines.remove(ex);
      const failure =
        ex.aborted && isRestClientError(ex.reason)
          ? ex.reason
          : toRestClientError(error, ex.info(), false, tries.failureContext);
      tries.finish(host, start, 0, failure);
      if (span !== undefined) endTrySpan(span, 0, failure);
      if (
        attempt === 1 &&
        failure.code === 'SOCKET' &&
        (failure as { stale?: boolean }).stale &&
        spec.idempotent
      ) {
        tries.replay(host, spec, failure, undefined);
        continue;
      }
      link?.dispose();
      throw failure;
    }
    const status = data.statusCode;
    const body = data.body;
    let done = false;
    body.once('close', () => {
      if (done) return;
      done = true;
      tries.deadlines.remove(ex);
      link?.dispose();
      const failure = body.errored
        ? ex.aborted && isRestClientError(ex.reason)
          ? ex.reason
          : toRestClientError(body.errored, ex.info(), true, tries.failureContext)
        : undefined;
      tries.finish(host, start, status, failure);
      if (span !== undefined) endTrySpan(span, status, failure);
    });
    return {
      host: host.origin,
      status,
      reason: data.statusText,
      headers: data.headers,
      body,
      ok: status >= 200 && status < 300,
    };
  }
}
