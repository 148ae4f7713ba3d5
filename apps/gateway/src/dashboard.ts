import type { IncomingMessage, ServerResponse } from 'node:http';
import { dashboardPage } from './dashboardPage.js';
import type { DashboardState } from './dashboardState.js';
import type { EventLog } from './eventLog.js';

/**
 * The dashboard at `/_x/`: one self-contained HTML page (inline CSS and JS, no build step, no
 * CDN), its data as JSON at `/_x/state`, and live updates over server-sent events at
 * `/_x/events` (`state` every second and right after instance changes, `event` for each new
 * line of the event log). Admin actions go from the page to the dispatcher's admin API
 * (`/_x/admin/…`, bearer token).
 */
export class Dashboard {
  private readonly streams = new Set<ServerResponse>();
  private pushTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly state: DashboardState,
    private readonly events: EventLog,
  ) {
    this.unsubscribe = events.subscribe(event => this.send('event', event));
  }

  /** Serves `/_x/`, `/_x/state` and `/_x/events`; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path === '/_x' || path === '/_x/' || path === '/_x/index.html') {
      if (path === '/_x') {
        res.writeHead(308, { location: '/_x/' });
        res.end();
        return true;
      }
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
    if (path === '/_x/state') {
      const body = JSON.stringify({ ...this.state.snapshot(), events: this.events.recent(100) });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return true;
    }
    if (path === '/_x/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write('retry: 2000\n\n');
      this.streams.add(res);
      req.on('close', () => this.streams.delete(res));
      this.write(res, 'events', this.events.recent(100));
      this.write(res, 'state', this.state.snapshot());
      return true;
    }
    return false;
  }

  private write(res: ServerResponse, event: string, data: unknown): void {
    if (res.writableEnded || res.destroyed) return;
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private send(event: string, data: unknown): void {
    for (const res of this.streams) this.write(res, event, data);
  }

  /** Sends the state to every open stream now. */
  broadcast(): void {
    if (this.streams.size === 0) return;
    this.send('state', this.state.snapshot());
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

  /** Ends every stream (they would keep the server from closing). */
  close(): void {
    this.unsubscribe();
    if (this.pushTimer) clearTimeout(this.pushTimer);
    for (const res of this.streams) res.end();
    this.streams.clear();
  }
}
