/** What `POST /api/reports` (and a report job) asks the reports workers for. */
export interface ReportRequest {
  readonly kind: 'sales' | 'inventory' | 'orders';
  /** Rows in the report (1…500). Default 12. */
  readonly rows?: number;
  /** Simulated work time in ms (demo knob: make a report slower than its deadline). */
  readonly delayMs?: number;
}

/** A generated report. */
export interface Report {
  readonly kind: ReportRequest['kind'];
  readonly rows: ReadonlyArray<{ readonly label: string; readonly value: number }>;
  readonly total: number;
  readonly worker: { readonly instance: string; readonly pid: number };
  readonly tookMs: number;
}

/** Counters of one reports worker. */
export interface ReportStats {
  readonly instance: string;
  readonly pid: number;
  readonly running: number;
  readonly generated: number;
  /** Stopped because the caller cancelled (client disconnected). */
  readonly cancelled: number;
  /** Stopped because the call's deadline passed. */
  readonly timedOut: number;
}

/** The worker-rpc API of the reports workers (typed proxy and handlers derive from it). */
export interface ReportsApi {
  reports: {
    generate(params: ReportRequest): Report;
    stats(): ReportStats;
  };
}

const KINDS: ReadonlyArray<ReportRequest['kind']> = ['sales', 'inventory', 'orders'];

/** A type guard for {@link ReportRequest} (used as the routes' `schema` translator). */
export function isReportRequest(value: unknown): value is ReportRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { kind, rows, delayMs } = value as Record<string, unknown>;
  return (
    KINDS.includes(kind as ReportRequest['kind']) &&
    (rows === undefined ||
      (Number.isInteger(rows) && (rows as number) >= 1 && (rows as number) <= 500)) &&
    (delayMs === undefined || (typeof delayMs === 'number' && delayMs >= 0 && delayMs <= 600_000))
  );
}
