import { validator, type Refuse } from '@x/routes';

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

/**
 * Checks a {@link ReportRequest}, refusing the first bad field by name with what was expected and
 * received (`kind: expected one of "sales", "inventory", "orders", received "nope"`).
 */
export function checkReportRequest(value: unknown, refuse: Refuse): ReportRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return refuse([], 'a JSON object like {"kind":"sales"}', value);
  const { kind, rows, delayMs } = value as Record<string, unknown>;
  if (!KINDS.includes(kind as ReportRequest['kind']))
    refuse('kind', `one of ${KINDS.map(k => JSON.stringify(k)).join(', ')}`, kind);
  if (
    rows !== undefined &&
    !(Number.isInteger(rows) && (rows as number) >= 1 && (rows as number) <= 500)
  )
    refuse('rows', 'an integer from 1 to 500', rows);
  if (delayMs !== undefined && !(typeof delayMs === 'number' && delayMs >= 0 && delayMs <= 600_000))
    refuse('delayMs', 'a number of ms from 0 to 600000', delayMs);
  return value as ReportRequest;
}

/** The {@link ReportRequest} validator (the routes' `schema` translator of reports and jobs). */
export const reportRequest = validator(checkReportRequest);
