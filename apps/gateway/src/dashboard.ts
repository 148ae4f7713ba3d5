import type { IncomingMessage, ServerResponse } from 'node:http';
import { DASHBOARD_COOKIE, DashboardAccess } from './dashboardAccess.js';
import { dashboardPage } from './dashboardPage.js';
import type { DashboardState } from './dashboardState.js';
import type { EventLog } from './eventLog.js';
import { sendJson } from './sendJson.js';
import type { TraceIngest } from './traceIngest.js';
import { TracesApi } from './tracesApi.js';

/** Limits of the dashboard's event streams (`dashboard` in `gateway.config.yaml`). */
export interface DashboardOptions {
  /** Most open `/_x/events` streams; one more is answered 503 `TOO_MANY_STREAMS`. Default 256. */
  readonly maxStreams?: number;
  /** A stream with more unsent bytes than this is closed (a client that does not read). Default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /** A stream that stays undrained this long is closed. Default 30 000 ms. */
  readonly stallTimeoutMs?: number;
  /** When set, `/_x/`, `/_x/state` and `/_x/events` need this token (see {@link DashboardAccess}). */
  readonly token?: string;
  /** The trace API (`/_x/traces`, see {@link TracesApi}); without it the API answers `enabled: false`. */
  readonly traces?: TracesApi;
  /** The OTLP receiver at `/_x/traces/v1/traces` (needs the admin token; see {@link TraceIngest}). */
  readonly ingest?: TraceIngest;
}

/** One open `/_x/events` stream. */
interface Stream {
  readonly res: ServerResponse;
  /** The latest state frame not written because the client was behind (coalesced). */
  pending: Buffer | undefined;
  /** Clock time the stream stopped accepting writes (undefined: it drains). */
  blockedAt: number | undefined;
}

/**
 * The dashboard at `/_x/`: one self-contained HTML page (inline CSS and JS, no build step, no
 * CDN), its data as JSON at `/_x/state`, and live updates over server-sent events at
 * `/_x/events` (`state` every second and right after instance changes, `event` for each new
 * line of the event log, batched per 100 ms). Admin actions go from the page to the dispatcher's admin API
 * (`/_x/admin/…`, bearer token).
 *
 * The streams hold under slow or hostile clients: each snapshot is serialised once into one
 * Buffer shared by every stream; a stream whose `write` returned false gets nothing more until
 * `'drain'` (it keeps only the latest state, and misses event lines meanwhile); a stream with more
 * than `maxBufferedBytes` unsent or undrained for `stallTimeoutMs` is closed; at most `maxStreams`
 * are open (503 with `Retry-After` beyond).
 */
export class Dashboard {
  private readonly streams = new Map<ServerResponse, Stream>();
  private pushTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;
  private readonly maxStreams: number;
  private readonly maxBufferedBytes: number;
  private readonly stallTimeoutMs: number;
  private readonly access: DashboardAccess;
  private readonly traces: TracesApi;
  private readonly ingest: TraceIngest | undefined;
  /** The `events` frame a new stream starts with (rebuilt after a new event line). */
  private eventsFrame: Buffer | undefined;
  /** The last `state` frame and when it was built (a new stream reuses it within a second). */
  private stateFrame: { frame: Buffer; at: number } | undefined;
  private dropped = 0;
  private refused = 0;
  /** Event lines of the last 100 ms, written to every stream in one write. */
  private eventBatch: Buffer[] = [];
  private eventTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly state: DashboardState,
    private readonly events: EventLog,
    options: DashboardOptions = {},
  ) {
    this.maxStreams = options.maxStreams ?? 256;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.access = new DashboardAccess(options.token);
    this.traces = options.traces ?? new TracesApi(undefined, undefined);
    this.ingest = options.ingest;
    this.unsubscribe = events.subscribe(event => {
      this.eventsFrame = undefined;
      if (this.streams.size === 0) return;
      this.eventBatch.push(frame('event', event));
      if (this.eventTimer === undefined) {
        this.eventTimer = setTimeout(() => this.flushEvents(), EVENT_BATCH_MS);
        this.eventTimer.unref();
      }
    });
  }

  /**
   * Serves `/_x/`, `/_x/state`, `/_x/fleet` (the replicas), `/_x/events` and the trace API
   * (`/_x/traces…`, with the OTLP receiver at `/_x/traces/v1/traces`); false for any other path.
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path === '/_x/traces/v1/traces' && this.ingest !== undefined) {
      this.ingest.handle(req, res);
      return true;
    }
    const page = path === '/_x' || path === '/_x/' || path === '/_x/index.html';
    const traces = path === '/_x/traces' || path.startsWith('/_x/traces/');
    if (!page && !traces && path !== '/_x/state' && path !== '/_x/events' && path !== '/_x/fleet')
      return false;
    if (path === '/_x') {
      res.writeHead(308, { location: '/_x/' });
      res.end();
      return true;
    }
    if (!this.access.open && !this.access.allows(req)) {
      const given = page ? new URL(req.url ?? '/', 'http://x').searchParams.get('token') : null;
      if (given !== null && this.access.matches(given)) {
        // the token moves from the URL into an HttpOnly cookie the page's requests carry
        res.writeHead(303, {
          location: '/_x/',
          'set-cookie': `${DASHBOARD_COOKIE}=${encodeURIComponent(given)}; Path=/_x/; HttpOnly; SameSite=Strict`,
          'cache-control': 'no-store',
        });
        res.end();
        return true;
      }
      req.resume();
      sendJson(
        res,
        401,
        {
          error: {
            code: 'UNAUTHORIZED',
            message: 'the dashboard needs its token (open /_x/?token=<token> once)',
          },
        },
        { 'www-authenticate': 'Bearer', 'cache-control': 'no-store' },
      );
      return true;
    }
    if (page) {
      const html = dashboardPage();
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': Buffer.byteLength(html),
        'cache-control': 'no-store',
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'",
      });
      res.end(html);
      return true;
    }
    if (traces) {
      req.resume();
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(
          res,
          405,
          { error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } },
          { allow: 'GET' },
        );
        return true;
      }
      return this.traces.handle(res, path);
    }
    if (path === '/_x/fleet') {
      const body = JSON.stringify(this.state.snapshot().fleet);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return true;
    }
    if (path === '/_x/state') {
      const body = JSON.stringify({ ...this.state.snapshot(), events: this.events.recent(100) });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return true;
    }
    if (this.streams.size >= this.maxStreams) {
      this.refused++;
      req.resume();
      sendJson(
        res,
        503,
        {
          error: {
            code: 'TOO_MANY_STREAMS',
            message: `the dashboard already has ${this.maxStreams} event streams open (dashboard.maxStreams)`,
          },
        },
        { 'retry-after': '5', 'cache-control': 'no-store' },
      );
      return true;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const stream: Stream = { res, pending: undefined, blockedAt: undefined };
    this.streams.set(res, stream);
    res.on('close', () => this.streams.delete(res));
    res.on('drain', () => this.drained(stream));
    this.write(stream, RETRY, false);
    this.write(stream, (this.eventsFrame ??= frame('events', this.events.recent(100))), false);
    this.write(stream, this.currentState(), true);
    return true;
  }

  /** The state frame, built at most once a second for new streams. */
  private currentState(): Buffer {
    const now = Date.now();
    if (this.stateFrame === undefined || now - this.stateFrame.at >= 1_000)
      this.stateFrame = { frame: frame('state', this.state.snapshot()), at: now };
    return this.stateFrame.frame;
  }

  /**
   * Writes `data` to one stream, unless the client is behind: then a state frame becomes its
   * pending one (replacing an older one) and an event line is skipped. A stream over its byte
   * bound, or behind for longer than the stall timeout, is closed.
   */
  private write(stream: Stream, data: Buffer, isState: boolean): void {
    const res = stream.res;
    if (res.writableEnded || res.destroyed) return;
    if (stream.blockedAt !== undefined || res.writableNeedDrain) {
      if (isState) stream.pending = data;
      stream.blockedAt ??= Date.now();
      if (
        res.writableLength > this.maxBufferedBytes ||
        Date.now() - stream.blockedAt > this.stallTimeoutMs
      )
        this.drop(stream);
      return;
    }
    if (!res.write(data)) {
      stream.blockedAt = Date.now();
      if (res.writableLength > this.maxBufferedBytes) this.drop(stream);
    }
  }

  private drained(stream: Stream): void {
    stream.blockedAt = undefined;
    const pending = stream.pending;
    stream.pending = undefined;
    if (pending !== undefined) this.write(stream, pending, true);
  }

  private drop(stream: Stream): void {
    this.dropped++;
    this.streams.delete(stream.res);
    stream.pending = undefined;
    stream.res.destroy();
  }

  private flushEvents(): void {
    this.eventTimer = undefined;
    const batch = this.eventBatch;
    this.eventBatch = [];
    if (batch.length > 0) this.send(batch.length === 1 ? batch[0]! : Buffer.concat(batch), false);
  }

  private send(data: Buffer, isState: boolean): void {
    for (const stream of this.streams.values()) this.write(stream, data, isState);
  }

  /** Sends the state to every open stream now (serialised once for all of them). */
  broadcast(): void {
    if (this.streams.size === 0) return;
    const data = frame('state', this.state.snapshot());
    this.stateFrame = { frame: data, at: Date.now() };
    this.send(data, true);
  }

  /** Sends the state soon (coalesces bursts of instance events). */
  pushSoon(): void {
    if (this.pushTimer) return;
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined;
      this.broadcast();
    }, 50);
    this.pushTimer.unref();
  }

  /** Open event streams. */
  get clients(): number {
    return this.streams.size;
  }

  /** Streams closed for not reading, and streams refused over `maxStreams`, since the start. */
  get counters(): { dropped: number; refused: number } {
    return { dropped: this.dropped, refused: this.refused };
  }

  /** Ends every stream (they would keep the server from closing). */
  close(): void {
    this.unsubscribe();
    if (this.pushTimer) clearTimeout(this.pushTimer);
    if (this.eventTimer) clearTimeout(this.eventTimer);
    this.eventBatch = [];
    for (const { res } of this.streams.values()) res.end();
    this.streams.clear();
  }
}

const RETRY = Buffer.from('retry: 2000\n\n');
/** Event lines are batched this long, so a burst costs one write per stream, not one per line. */
const EVENT_BATCH_MS = 100;

/** One server-sent event, serialised once. */
function frame(event: string, data: unknown): Buffer {
  return Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
