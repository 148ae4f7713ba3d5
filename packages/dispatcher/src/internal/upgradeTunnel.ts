import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  AbortedError,
  DEADLINE_HEADER,
  deadlineHeaderValue,
  isXError,
  type Clock,
  type Logger,
} from '@x/resilience';
import { BackendError, DeadlineExceededError, DispatcherError } from '../errors.js';
import type { RouteDecision } from '../routeDecision.js';
import { sendSocketError } from './errorResponse.js';
import type { ForwardedRequest } from './forwardedRequest.js';
import type { Instance } from './instance.js';
import { SERVED_BY_HEADER } from './servedByHeader.js';
import type { Deadline, VersionPool } from './versionPool.js';

/** A routed upgrade request and where its tunnel is registered. */
export interface UpgradeRequest {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly request: ForwardedRequest;
  readonly pool: VersionPool;
  readonly decision: RouteDecision;
  readonly deadline: Deadline;
  /** Open tunnels (client sockets), for the front door's close. */
  readonly tunnels: Set<Duplex>;
}

/** What {@link tunnelUpgrade} needs besides the request. */
export interface UpgradeServices {
  readonly clock: Clock;
  readonly log: Logger;
  readonly requestIdHeader: string;
}

/**
 * Takes a slot on an instance of the routed version (waiting at most until the deadline), asks it
 * for the upgrade (undici `upgrade`) and, on its 101, writes the 101 with `X-Served-By` to the
 * client and pipes the two sockets. The slot is released once the 101 is in: a tunnel is not a
 * request. Rejects with the typed error to answer ({@link refuseUpgrade}) before the 101.
 */
export async function tunnelUpgrade(u: UpgradeRequest, services: UpgradeServices): Promise<void> {
  const { socket, pool, decision, deadline, request } = u;
  const { clock } = services;
  const startedAt = clock.now();
  const abort = new AbortController();
  const onClose = () => abort.abort(new AbortedError());
  socket.once('close', onClose);
  const timer = clock.setTimeout(
    () => abort.abort(new DeadlineExceededError(deadline.timeoutMs)),
    Math.max(0, deadline.at - startedAt),
  );
  timer.unref?.();
  let instance: Instance | undefined;
  let ok = false;
  try {
    instance =
      decision.instance !== undefined
        ? await pool.acquireInstance(decision.instance, deadline, abort.signal)
        : await pool.acquire(deadline, abort.signal);
    const upstream = instance.pool;
    if (upstream === undefined)
      throw new BackendError(`instance ${instance.servedBy} is in-process: it takes no upgrade`);
    const headers = [...request.headers];
    const leftMs = deadline.at - clock.now();
    if (leftMs > 0 && leftMs !== Infinity)
      headers.push(DEADLINE_HEADER, deadlineHeaderValue(leftMs));
    const protocol = u.req.headers.upgrade ?? 'websocket';
    let answer: Awaited<ReturnType<typeof upstream.upgrade>>;
    try {
      answer = await upstream.upgrade({
        path: request.url,
        method: request.method,
        headers,
        protocol,
        signal: abort.signal,
      });
    } catch (error) {
      if (abort.signal.aborted) {
        if (abort.signal.reason instanceof DeadlineExceededError) instance.requestTimedOut();
        throw abort.signal.reason;
      }
      throw new BackendError(
        `instance ${instance.servedBy} refused the upgrade: ${(error as Error).message}`,
        { cause: error },
      );
    }
    ok = true;
    instance.answered();
    const tunnel = answer.socket;
    let head = 'HTTP/1.1 101 Switching Protocols\r\n';
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined || name === SERVED_BY_HEADER) continue;
      for (const one of Array.isArray(value) ? value : [value]) head += `${name}: ${one}\r\n`;
    }
    head += `${services.requestIdHeader}: ${request.requestId}\r\n`;
    head += `${SERVED_BY_HEADER}: ${instance.servedBy}\r\n\r\n`;
    if (socket.destroyed) {
      tunnel.destroy();
      return;
    }
    u.tunnels.add(socket);
    socket.write(head);
    if (u.head.length > 0) tunnel.write(u.head);
    const cut = () => {
      u.tunnels.delete(socket);
      socket.destroy();
      tunnel.destroy();
    };
    tunnel.on('error', cut).on('close', cut);
    socket.on('error', cut).on('close', cut);
    tunnel.pipe(socket);
    socket.pipe(tunnel);
  } finally {
    clock.clearTimeout(timer);
    socket.off('close', onClose);
    if (instance !== undefined) pool.release(instance, ok, clock.now() - startedAt);
  }
}

/** Answers a refused upgrade on the raw socket (the error's status and code), or just closes it. */
export function refuseUpgrade(socket: Duplex, error: unknown, log: Logger): void {
  if (isXError(error, 'ABORTED')) {
    socket.destroy();
    return;
  }
  if (!(error instanceof DispatcherError)) log.error({ err: error }, 'front door upgrade failure');
  const known = error instanceof DispatcherError;
  sendSocketError(
    socket,
    known ? error.status : 500,
    STATUS_CODES[known ? error.status : 500] ?? 'Error',
    known
      ? { code: error.code, message: error.message }
      : { code: 'INTERNAL', message: 'internal error' },
  );
}
