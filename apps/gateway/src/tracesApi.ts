import type { ServerResponse } from 'node:http';
import { sendJson } from './sendJson.js';
import type { TraceIngest } from './traceIngest.js';
import type { TraceStore } from './traceStore.js';

const TRACE_ID = /^[0-9a-f]{32}$/;

/**
 * The dashboard's trace API (read side; access as the rest of the dashboard):
 *
 * - `GET /_x/traces`: `{ enabled, limits, stored, ingest, endpoints: [{ endpoint, traces }] }`,
 *   each endpoint's last traces newest first (`traceId`, `durationMs`, `status`, `error`…);
 *   `{ enabled: false }` when `tracing.dashboardTraces` is 0.
 * - `GET /_x/traces/<traceId>`: that trace with its `waterfall` (every span after its parent,
 *   with `offsetMs`, `durationMs`, `depth`); 404 once it is no longer kept.
 */
export class TracesApi {
  constructor(
    private readonly store: TraceStore | undefined,
    private readonly ingest: TraceIngest | undefined,
  ) {}

  /** Answers `path` (under `/_x/traces`); false when it is not one of the API's paths. */
  handle(res: ServerResponse, path: string): boolean {
    const noStore = { 'cache-control': 'no-store' };
    if (path === '/_x/traces' || path === '/_x/traces/') {
      if (this.store === undefined) {
        sendJson(res, 200, { enabled: false, endpoints: [] }, noStore);
        return true;
      }
      sendJson(
        res,
        200,
        {
          enabled: true,
          limits: this.store.limits,
          stored: this.store.stats(),
          ingest: this.ingest?.counters,
          endpoints: this.store.list(),
        },
        noStore,
      );
      return true;
    }
    const id = path.slice('/_x/traces/'.length);
    if (!path.startsWith('/_x/traces/') || id.includes('/')) return false;
    if (!TRACE_ID.test(id)) {
      sendJson(res, 400, {
        error: {
          code: 'INVALID_REQUEST',
          message: `trace id: expected 32 lowercase hex digits, got ${JSON.stringify(id.slice(0, 64))}`,
        },
      });
      return true;
    }
    const trace = this.store?.get(id);
    if (trace === undefined)
      sendJson(res, 404, {
        error: { code: 'NOT_FOUND', message: `no trace ${id} kept (or tracing is off)` },
      });
    else sendJson(res, 200, trace, noStore);
    return true;
  }
}
