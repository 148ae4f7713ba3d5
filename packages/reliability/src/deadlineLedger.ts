import { isXError } from '@x/resilience';
import type { TimerLateness } from './timerLateness.js';

/** What a {@link DeadlineLedger} found. */
export interface DeadlineReport {
  readonly calls: number;
  readonly successes: number;
  /**
   * Calls that settled more than `graceMs` after their deadline (plus, with a `TimerLateness`,
   * twice the most a bare timer was late in the same process while the calls ran), or never.
   */
  readonly violations: number;
  /** Calls still unsettled `neverAfterMs` after their deadline (counted in `violations` too). */
  readonly neverSettled: number;
  /** Largest `settle time - deadline` over all calls, in ms (negative when all were early). */
  readonly maxLatenessMs: number;
  /** Scheduling delay excused: the most a bare timer was late while the calls ran, in ms. */
  readonly maxExcusedMs: number;
  /** Failures by error code; untyped failures are counted as `untyped:<name>`. */
  readonly codes: ReadonlyMap<string, number>;
  /** Failures that are not an `XError` with a stable upper-case code: a few samples. */
  readonly untyped: readonly string[];
}

const STABLE_CODE = /^[A-Z][A-Z0-9_]*$/;

/**
 * Settle-time accounting for calls that each have a deadline: how late each call settled after its
 * deadline, which ones never settled, and the code of every failure.
 */
export class DeadlineLedger {
  private calls = 0;
  private successes = 0;
  private violations = 0;
  private neverSettled = 0;
  private maxLatenessMs = -Infinity;
  /** Lateness of each call that settled later than `graceMs` after its deadline. */
  private readonly late: number[] = [];
  private readonly startedAt = performance.now();
  private readonly codes = new Map<string, number>();
  private readonly untyped: string[] = [];

  /**
   * @param graceMs how late after its deadline a call may settle (default 50 ms)
   * @param neverAfterMs after deadline + this, a call counts as never settling (default 2 000 ms)
   * @param scheduling when given, a call may also be late by twice as much as a bare timer was
   *   late while this ledger's calls ran (the machine's load, measured in the same run)
   */
  constructor(
    readonly graceMs = 50,
    readonly neverAfterMs = 2_000,
    private readonly scheduling?: TimerLateness,
  ) {}

  /** Starts `call` now and records when and how it settles against `deadlineMs` from now. */
  async track(deadlineMs: number, call: () => Promise<unknown>): Promise<void> {
    this.calls++;
    const start = performance.now();
    let watchdog: NodeJS.Timeout | undefined;
    const never = new Promise<'never'>(resolve => {
      watchdog = setTimeout(() => resolve('never'), deadlineMs + this.neverAfterMs);
    });
    const settled = (async () => {
      try {
        await call();
        return { ok: true as const };
      } catch (error) {
        return { ok: false as const, error };
      }
    })();
    const outcome = await Promise.race([settled, never]);
    clearTimeout(watchdog);
    if (outcome === 'never') {
      this.neverSettled++;
      this.violations++;
      return;
    }
    const lateness = performance.now() - start - deadlineMs;
    this.maxLatenessMs = Math.max(this.maxLatenessMs, lateness);
    if (lateness > this.graceMs) this.late.push(lateness);
    if (outcome.ok) this.successes++;
    else this.fail(outcome.error);
  }

  private fail(error: unknown): void {
    const typed = isXError(error) && STABLE_CODE.test(error.code);
    const code = typed ? error.code : `untyped:${(error as Error | null)?.name ?? typeof error}`;
    this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
    if (!typed && this.untyped.length < 5) this.untyped.push(String(error));
  }

  report(): DeadlineReport {
    // twice the worst stall: once for the stall itself, once for the backlog of calls that all
    // wake at its end and settle one after another (on an idle machine both are a millisecond)
    const excused = 2 * (this.scheduling?.maxBetween(this.startedAt, performance.now()) ?? 0);
    const late = this.late.filter(ms => ms > this.graceMs + excused).length;
    return {
      calls: this.calls,
      successes: this.successes,
      violations: this.violations + late,
      neverSettled: this.neverSettled,
      maxLatenessMs: this.maxLatenessMs,
      maxExcusedMs: excused,
      codes: new Map(this.codes),
      untyped: [...this.untyped],
    };
  }
}

/** The reports of several ledgers as one. */
export function combineReports(reports: readonly DeadlineReport[]): DeadlineReport {
  const codes = new Map<string, number>();
  for (const r of reports)
    for (const [code, n] of r.codes) codes.set(code, (codes.get(code) ?? 0) + n);
  const sum = (pick: (r: DeadlineReport) => number) => reports.reduce((t, r) => t + pick(r), 0);
  return {
    calls: sum(r => r.calls),
    successes: sum(r => r.successes),
    violations: sum(r => r.violations),
    neverSettled: sum(r => r.neverSettled),
    maxLatenessMs: Math.max(...reports.map(r => r.maxLatenessMs)),
    maxExcusedMs: Math.max(...reports.map(r => r.maxExcusedMs)),
    codes,
    untyped: reports.flatMap(r => r.untyped),
  };
}

/** A code histogram as text, most frequent first: `TIMEOUT 812, SOCKET 301`. */
export function formatCodes(codes: ReadonlyMap<string, number>): string {
  return [...codes]
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
}
