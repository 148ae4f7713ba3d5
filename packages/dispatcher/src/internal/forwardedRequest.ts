import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEADLINE_HEADER } from '@x/resilience';
import { InvalidRequestError, PayloadTooLargeError, TooManyHeadersError } from '../errors.js';
import type { RouteDecision } from '../routeDecision.js';
import { HOP_BY_HOP, connectionTokens } from './headers.js';
import { nextRequestId } from './requestId.js';
import { unmap, type TrustedProxies } from './trustedProxies.js';
import type { Deadline, VersionPool } from './versionPool.js';

/**
 * Most header lines a request may have (431 `TOO_MANY_HEADERS` beyond). Node keeps only the first
 * 2 000 in `rawHeaders` (`server.maxHeadersCount`), which would hide a second `Host` or a
 * `Content-Length` from the smuggling checks; this bound is below that, so nothing is hidden.
 */
export const MAX_REQUEST_HEADERS = 1000;

/** What {@link readForwardedRequest} needs to know. */
export interface ForwardSettings {
  readonly trustedProxies: TrustedProxies;
  readonly maxBodyBytes: number;
  readonly requestIdHeader: string;
  /** The request id the mounting server gave the request (trusted); none: a new or a trusted one. */
  readonly requestId: ((req: IncomingMessage) => string | undefined) | undefined;
}

/** A checked request, its headers ready for the instance. */
export interface ForwardedRequest {
  readonly method: string;
  readonly url: string;
  /** `url` without its query. */
  readonly path: string;
  /** Headers for the instance as a flat name/value list: hop-by-hop and untrusted ones dropped. */
  readonly headers: string[];
  /** The body has a length or is chunked. */
  readonly hasBody: boolean;
  readonly chunked: boolean;
  readonly requestId: string;
  /** The client's address (from trusted proxies' `X-Forwarded-For`, else the peer's). */
  readonly sourceIp: string;
  /** The caller's budget (`x-request-timeout-ms`) as sent, if any. */
  readonly budget: string | string[] | undefined;
}

/** An admitted request on its way to an instance of `pool`. */
export interface Forward {
  readonly pool: VersionPool;
  readonly res: ServerResponse;
  readonly method: string;
  readonly url: string;
  /** Request headers to forward, as a flat name/value list (hop-by-hop headers stripped). */
  readonly headers: string[];
  readonly body: IncomingMessage | AsyncIterable<Uint8Array> | null;
  readonly requestId: string;
  readonly decision: RouteDecision;
  readonly sourceIp: string;
  /** Clock time the request was admitted (for the instance's latency). */
  readonly startedAt: number;
  /** When it must be answered: time spent waiting for an instance counts. */
  readonly deadline: Deadline;
}

/**
 * Checks a request the way a reverse proxy must (HTTP/1.x, origin-form target, one unambiguous
 * body length, one Host, at most {@link MAX_REQUEST_HEADERS} header lines, the body limit) and
 * builds the headers to forward: hop-by-hop headers and `Connection` tokens dropped,
 * `X-Forwarded-For`/`-Proto` and the request id taken from trusted proxies only, then extended.
 * The budget header is read from `req.headers`, so a server that mounts the front door may cap or
 * drop it first. Throws the typed error a refused request is answered with (connection closed).
 */
export function readForwardedRequest(
  req: IncomingMessage,
  settings: ForwardSettings,
): ForwardedRequest {
  const headers = req.headers;
  const url = req.url ?? '';
  const method = req.method ?? 'GET';
  if (req.rawHeaders.length / 2 > MAX_REQUEST_HEADERS)
    throw new TooManyHeadersError(MAX_REQUEST_HEADERS, req.rawHeaders.length / 2);
  // HTTP/1.x only: a CR or LF in the request target makes the parser read the request line as
  // HTTP/0.9 and the rest of it as headers, which would be forwarded (header injection)
  if (req.httpVersionMajor !== 1)
    throw new InvalidRequestError(`unsupported HTTP version ${req.httpVersion}`);
  // request smuggling: a body length must be unambiguous
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te !== undefined && (cl !== undefined || te.toLowerCase() !== 'chunked'))
    throw new InvalidRequestError('conflicting or unsupported Transfer-Encoding / Content-Length');
  if (url.charCodeAt(0) !== 47 /* / */)
    throw new InvalidRequestError('request target must be a path (origin-form)');
  let contentLength = 0;
  if (cl !== undefined) {
    contentLength = Number(cl);
    if (!(contentLength >= 0)) throw new InvalidRequestError('bad Content-Length');
    if (contentLength > settings.maxBodyBytes)
      throw new PayloadTooLargeError(settings.maxBodyBytes);
  }
  const remote = req.socket.remoteAddress ?? '';
  const trusted = !settings.trustedProxies.empty && settings.trustedProxies.has(remote);

  const raw = req.rawHeaders;
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let requestId: string | undefined;
  let connection: string | undefined;
  let contentLengths = 0;
  let hosts = 0;
  let budget: string | string[] | undefined;
  let budgets = 0;
  const idHeader = settings.requestIdHeader;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = raw[i + 1];
      continue;
    }
    if (lower === 'content-length') contentLengths++;
    else if (lower === 'host') hosts++;
    else if (lower === 'expect')
      continue; // answered here (100-continue); undici refuses it
    else if (lower === 'x-forwarded-for') {
      if (trusted)
        forwardedFor = forwardedFor === undefined ? raw[i + 1] : `${forwardedFor}, ${raw[i + 1]}`;
      continue;
    } else if (lower === 'x-forwarded-proto') {
      if (trusted) forwardedProto = raw[i + 1];
      continue;
    } else if (lower === idHeader) {
      if (trusted) requestId = raw[i + 1];
      continue;
    } else if (lower === DEADLINE_HEADER) {
      // the caller's budget: read below, sent on shrunk by the time spent here
      budgets++;
      budget = budget === undefined ? raw[i + 1] : [budget, raw[i + 1]!].flat();
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  if (contentLengths > 1) throw new InvalidRequestError('duplicate Content-Length');
  if (hosts > 1) throw new InvalidRequestError('more than one Host header');
  // one budget header: as the mounting server left it in req.headers (capped, dropped)
  if (budgets <= 1) budget = headers[DEADLINE_HEADER];
  const given = settings.requestId?.(req);
  if (typeof given === 'string' && given !== '') requestId = given;
  if (requestId === undefined || requestId.length > 200) requestId = nextRequestId();
  const client = unmap(remote);
  out.push(
    'x-forwarded-for',
    forwardedFor === undefined ? client : `${forwardedFor}, ${client}`,
    'x-forwarded-proto',
    forwardedProto ?? 'http',
    idHeader,
    requestId,
  );
  const q = url.indexOf('?');
  return {
    method,
    url,
    path: q < 0 ? url : url.slice(0, q),
    headers: connection === undefined ? out : stripConnectionTokens(out, connection),
    hasBody: te !== undefined || contentLength > 0,
    chunked: te !== undefined,
    requestId,
    sourceIp: trusted ? settings.trustedProxies.clientIp(remote, forwardedFor) : client,
    budget,
  };
}

function stripConnectionTokens(flat: string[], connection: string): string[] {
  const tokens = connectionTokens(connection);
  if (tokens.length === 0) return flat;
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (tokens.includes(flat[i]!.toLowerCase())) continue;
    out.push(flat[i]!, flat[i + 1]!);
  }
  return out;
}
