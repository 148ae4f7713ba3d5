import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { keyed, rateLimit, type Clock, type KeyedPolicy, type RateLimiter } from '@x/resilience';
import { InvalidRequestError, PayloadTooLargeError, TooManyAttemptsError } from '../errors.js';
import { sendJson } from './errorResponse.js';

/** Largest admin API request body; more is a 413 `PAYLOAD_TOO_LARGE`. */
export const ADMIN_BODY_LIMIT = 65_536;

/** Runs one admin API call once the token was checked. */
export type AdminCall = (
  method: string,
  path: string,
  query: URLSearchParams,
  body: unknown,
) => Promise<{ status: number; body: unknown }>;

/** Settings of an {@link AdminGate}. */
export interface AdminGateSettings {
  readonly token: Buffer;
  /** Wrong admin tokens one client address may send per `failureWindowMs` before 429. */
  readonly maxFailures: number;
  readonly failureWindowMs: number;
  readonly requestIdHeader: string;
  readonly clock: Clock;
}

/**
 * The admin API's door: a bearer token (`Authorization: Bearer …` or `X-Admin-Token`), compared
 * in constant time, a lockout per client address after too many wrong tokens, and a JSON body of
 * at most {@link ADMIN_BODY_LIMIT} bytes. Errors are thrown for the caller to answer.
 */
export class AdminGate {
  private readonly digest: Buffer;
  /** Failed token attempts per client address: a token bucket each (bounded, idle-evicted). */
  private readonly failures: KeyedPolicy<RateLimiter>;

  constructor(
    private readonly settings: AdminGateSettings,
    private readonly call: AdminCall,
    private readonly ensureStarted: () => Promise<void>,
  ) {
    this.digest = sha256(settings.token);
    const { maxFailures, failureWindowMs, clock } = settings;
    const perSecond = maxFailures / (failureWindowMs / 1000);
    this.failures = keyed(
      () => '',
      () => rateLimit({ perSecond, burst: maxFailures, clock }),
      { maxKeys: 10_000, idleTtlMs: failureWindowMs, clock },
    );
  }

  /** Serves `subPath` of the admin API; throws a `DispatcherError` to be answered by the caller. */
  async serve(
    req: IncomingMessage,
    res: ServerResponse,
    url: string,
    subPath: string,
    requestId: string,
    clientIp: string,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    // too many wrong tokens from this address: refused before the token is looked at, so the
    // answer tells a guesser nothing (the right token waits out the lockout too)
    const failures = this.failures.peek(clientIp);
    if (failures !== undefined && failures.available < 1) {
      req.resume();
      throw new TooManyAttemptsError(failures.tryTake());
    }
    const auth = req.headers.authorization;
    // the scheme is case-insensitive (RFC 9110 §11.1)
    const token =
      auth !== undefined && /^bearer /i.test(auth) ? auth.slice(7) : req.headers['x-admin-token'];
    if (typeof token !== 'string' || token === '') {
      req.resume();
      return sendJson(
        res,
        401,
        { error: { code: 'UNAUTHORIZED', message: 'admin API needs a bearer token' } },
        { 'www-authenticate': 'Bearer' },
      );
    }
    if (!timingSafe(this.digest, sha256(Buffer.from(token)))) {
      req.resume();
      this.failures.get(clientIp).tryTake();
      return sendJson(res, 403, { error: { code: 'FORBIDDEN', message: 'wrong admin token' } });
    }
    const body = method !== 'GET' && method !== 'HEAD' ? await readJson(req) : undefined;
    if (body === undefined) req.resume();
    await this.ensureStarted();
    const q = url.indexOf('?');
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const result = await this.call(method, subPath, query, body);
    sendJson(res, result.status, result.body, { [this.settings.requestIdHeader]: requestId });
  }
}

/** The request body as JSON (undefined when empty), at most {@link ADMIN_BODY_LIMIT} bytes. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > ADMIN_BODY_LIMIT)
    throw new PayloadTooLargeError(ADMIN_BODY_LIMIT);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > ADMIN_BODY_LIMIT) throw new PayloadTooLargeError(ADMIN_BODY_LIMIT);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidRequestError('admin request body must be JSON');
  }
}

function sha256(value: Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}

function timingSafe(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
