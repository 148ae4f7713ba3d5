import { BroadcastError } from '../broadcastError.js';
import type { BroadcastMode, BroadcastResult } from '../broadcastResult.js';
import {
  ClosedError,
  InvalidCallError,
  NoHostError,
  RequestAbortedError,
  type RestClientError,
} from '../errors.js';
import type { Response } from '../response.js';
import { CallLink, abortReason } from './callLink.js';
import type { CallSpec } from './callSpec.js';
import type { Exchange } from './exchange.js';
import type { HostPool } from './hostPool.js';
import { callTracer } from './requestTracer.js';

/** What {@link broadcast} needs from the client (handed in: the engine). */
export interface BroadcastTries {
  readonly closed: boolean;
  now(): number;
  /** One try on `host` plus the stale-connection (or 408) replay; `track` sees each exchange. */
  tryWithReplay(
    host: HostPool,
    spec: CallSpec,
    link: CallLink | undefined,
    track: (ex: Exchange) => void,
  ): Promise<Response>;
  /** The typed error of a failed try. */
  asFailure(error: unknown, host: HostPool, spec: CallSpec, attempts: number): RestClientError;
}

function describeMode(mode: BroadcastMode): string {
  return typeof mode === 'object' ? `quorum(${mode.quorum})` : `'${mode}'`;
}

/**
 * Sends `spec` to every host at once and collects the answers according to `mode` (see
 * `BroadcastMode`); hosts still running when the mode is decided are cancelled. Each host gets
 * one try plus the stale-connection replay; no retries.
 */
export function broadcast(
  tries: BroadcastTries,
  spec: CallSpec,
  hosts: readonly HostPool[],
  mode: BroadcastMode,
): Promise<BroadcastResult> {
  // Traced: one parent span per broadcast over several hosts, one child span per host's try.
  if (!callTracer.enabled || spec.trace !== undefined || hosts.length < 2)
    return send(tries, spec, hosts, mode);
  const span = callTracer.start(`broadcast ${spec.method}`, {
    attributes: {
      'http.request.method': spec.method,
      'url.path': spec.path,
      'x.hosts': hosts.length,
      'x.mode': typeof mode === 'object' ? `quorum(${mode?.quorum})` : String(mode),
    },
  });
  if (span === undefined) return send(tries, spec, hosts, mode);
  spec.trace = span;
  return send(tries, spec, hosts, mode).then(
    result => {
      span.end();
      return result;
    },
    (error: unknown) => {
      span.end(error);
      throw error;
    },
  );
}

function send(
  tries: BroadcastTries,
  spec: CallSpec,
  hosts: readonly HostPool[],
  mode: BroadcastMode,
): Promise<BroadcastResult> {
  if (tries.closed)
    return Promise.reject(new ClosedError({ method: spec.method, path: spec.path }));
  const n = hosts.length;
  const info = { method: spec.method, path: spec.path, idempotent: spec.idempotent };
  if (n === 0) return Promise.reject(new NoHostError('no host to broadcast to', info));
  if (
    mode === null ||
    (typeof mode !== 'object' && mode !== 'all' && mode !== 'settled' && mode !== 'first')
  ) {
    return Promise.reject(
      new InvalidCallError(`unknown broadcast mode ${JSON.stringify(mode)}`, info),
    );
  }
  const need = typeof mode === 'object' ? mode.quorum : mode === 'first' ? 1 : n;
  if (typeof mode === 'object' && !(Number.isInteger(need) && need >= 1 && need <= n)) {
    return Promise.reject(
      new InvalidCallError(
        `quorum must be an integer from 1 to ${n} (the hosts), got ${String(need)}`,
        info,
      ),
    );
  }
  const startedAt = tries.now();
  spec.startedAt = startedAt;
  spec.deadline = spec.totalMs === Infinity ? Infinity : startedAt + spec.totalMs;
  let link: CallLink | undefined;
  if (spec.signal !== undefined) {
    if (spec.signal.aborted) return Promise.reject(abortReason(spec.signal, spec));
    link = new CallLink(spec.signal, spec);
  }
  const origins = hosts.map(h => h.origin);
  const responses = new Map<string, Response>();
  const failures = new Map<string, RestClientError>();
  const running: (Exchange | undefined)[] = new Array<Exchange | undefined>(n);
  return new Promise<BroadcastResult>((resolve, reject) => {
    let settled = 0;
    let good = 0;
    let bad = 0;
    let decided = false;
    const decide = (satisfied: boolean) => {
      decided = true;
      link?.dispose();
      for (let i = 0; i < n; i++) {
        const ex = running[i];
        if (ex === undefined) continue;
        running[i] = undefined;
        const cancelled = new RequestAbortedError('the broadcast was decided', ex.info());
        failures.set(origins[i]!, cancelled);
        ex.abort(cancelled);
      }
      const result: BroadcastResult = {
        mode,
        hosts: origins,
        responses,
        failures,
        complete: responses.size === n,
        satisfied,
      };
      if (satisfied) {
        resolve(result);
        return;
      }
      if (link?.reason !== undefined) {
        reject(link.reason);
        return;
      }
      const first = failures.values().next().value as RestClientError | undefined;
      const summary =
        failures.size > 0
          ? `${failures.size} failed${first ? ` (${first.host ?? ''}: ${first.code})` : ''}`
          : `${responses.size - good} not ok`;
      reject(
        new BroadcastError(
          result,
          `broadcast ${spec.method} ${spec.path} to ${n} hosts: ${describeMode(mode)} not satisfied, ${good} ok, ${summary}`,
          info,
        ),
      );
    };
    const settle = () => {
      settled++;
      if (decided) return;
      if (mode === 'settled') {
        if (settled === n) decide(link?.reason === undefined);
      } else if (mode === 'all') {
        if (bad > 0) decide(false);
        else if (settled === n) decide(true);
      } else {
        if (good >= need) decide(true);
        else if (n - bad < need || settled === n) decide(false);
      }
    };
    for (let i = 0; i < n; i++) {
      const host = hosts[i]!;
      tries
        .tryWithReplay(host, spec, link, ex => (running[i] = ex))
        .then(
          response => {
            running[i] = undefined;
            if (decided) return;
            responses.set(host.origin, response);
            if (response.ok) good++;
            else if (mode !== 'all' && mode !== 'settled') bad++;
            settle();
          },
          (error: unknown) => {
            running[i] = undefined;
            if (decided) return;
            failures.set(host.origin, tries.asFailure(error, host, spec, 1));
            bad++;
            settle();
          },
        );
    }
  });
}
