import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** Most header lines a request may have; one more is a 431 `TOO_MANY_HEADERS`. */
export const MAX_REQUEST_HEADERS = 1000;

/** Why a request is refused: its status, a stable code and a message naming the problem. */
export interface Refusal {
  readonly status: 400 | 431;
  readonly code: 'INVALID_REQUEST' | 'TOO_MANY_HEADERS';
  readonly message: string;
}

/**
 * Why the gateway refuses a request before routing it (answered 400 `INVALID_REQUEST`, connection
 * closed), or undefined. The gateway is the edge: it applies the framing checks of the dispatcher's
 * front door (its README, "request smuggling") itself, rather than re-framing an ambiguous request
 * into a clean one and passing it on:
 *
 * - an HTTP version other than 1.x: a CR or LF in the request target makes Node's parser read the
 *   request line as HTTP/0.9 and the rest of it as headers (header injection);
 * - a `Transfer-Encoding` other than exactly `chunked` (`identity, chunked`, `gzip`, two headers);
 * - more than one `Host` header;
 * - a target that is not a path (absolute-form, `*`);
 * - more than {@link MAX_REQUEST_HEADERS} header lines (431 `TOO_MANY_HEADERS`): Node keeps only
 *   the first `server.maxHeadersCount` (2 000) of `req.rawHeaders`, so the checks above would not
 *   see a second `Host` or a `Transfer-Encoding` hidden behind 2 000 filler headers. The bound is
 *   below Node's, so a truncated list is always over it.
 *
 * Node's parser already refuses `Content-Length` with `Transfer-Encoding`, duplicate
 * `Content-Length`, bad chunk sizes and CR / LF / NUL in header values (400), and oversized heads (431).
 */
export function requestRefusal(req: IncomingMessage): Refusal | undefined {
  const raw = req.rawHeaders;
  if (raw.length / 2 > MAX_REQUEST_HEADERS)
    return {
      status: 431,
      code: 'TOO_MANY_HEADERS',
      message: `too many header lines: expected at most ${MAX_REQUEST_HEADERS}, got ${raw.length / 2}${raw.length / 2 >= 2_000 ? ' or more' : ''}`,
    };
  const invalid = (message: string): Refusal => ({ status: 400, code: 'INVALID_REQUEST', message });
  if (req.httpVersionMajor !== 1) return invalid(`unsupported HTTP version ${req.httpVersion}`);
  const te = req.headers['transfer-encoding'];
  if (te !== undefined && te.toLowerCase() !== 'chunked')
    return invalid('unsupported Transfer-Encoding (only chunked)');
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1) return invalid('more than one Host header');
  if (req.url?.charCodeAt(0) !== 47 /* / */)
    return invalid('request target must be a path (origin-form)');
  return undefined;
}

/**
 * {@link requestRefusal} per connection: Node's parser emits every request of a pipelined batch,
 * also those behind a refused one (the request smuggled after an ambiguous body), so a connection
 * that had a request refused serves nothing more; it closes after the 400.
 */
export class RequestGuard {
  private readonly refused = new WeakSet<Socket>();

  /** Why `req` is refused (its connection is then marked), or undefined. */
  refuse(req: IncomingMessage): Refusal | undefined {
    const reason = requestRefusal(req);
    if (reason !== undefined) this.refused.add(req.socket);
    return reason;
  }

  /** True for a request pipelined behind a refused one: leave it unanswered. */
  ignore(req: IncomingMessage): boolean {
    return this.refused.has(req.socket);
  }
}
