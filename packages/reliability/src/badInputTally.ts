import { isXError } from '@x/resilience';
import { recordFigure } from './figures.js';
import { sized } from './profile.js';

/** Timeout of each bad-input test: the long profile runs ten times the cases of the quick one. */
export const BAD_INPUT_TIMEOUT_MS = sized({ quick: 120_000, long: 1_200_000 });

/** The code of a thrown value when it is an accepted typed error, otherwise undefined. */
export type TypedCode = (error: unknown) => string | undefined;

/** Accepts `@x` errors (`isXError`) whose code is one of `codes` (from the package README). */
export function xErrorCodes(codes: readonly string[]): TypedCode {
  return error => (isXError(error) && codes.includes(error.code) ? error.code : undefined);
}

/**
 * Counts the outcomes of one parser's bad-input cases: `ok` for a valid result, the code for a
 * typed error. Anything else (a plain TypeError, a RangeError, an unknown code) fails the case
 * with a message naming it, so fast-check shrinks it to the smallest input that crashes.
 */
export class BadInputTally {
  /** Outcome → number of cases. */
  readonly outcomes = new Map<string, number>();
  /** Cases run, shrinking runs included. */
  cases = 0;
  /** Longest single case, in milliseconds. */
  slowestMs = 0;
  /** Runs the slowest case's input again, when the case was given one. */
  private slowestReplay: (() => unknown) | undefined;
  private readonly startedAt = performance.now();

  constructor(
    /** Name in the figures, e.g. `dispatch rules (compileDispatchRules)`. */
    readonly parser: string,
    private readonly typedCode: TypedCode,
  ) {}

  /** Runs one synchronous case and counts its outcome. */
  run(fn: () => unknown): unknown {
    const start = performance.now();
    try {
      const value = fn();
      this.count('ok', performance.now() - start, fn);
      return value;
    } catch (error) {
      this.count(this.codeOf(error), performance.now() - start, fn);
      return undefined;
    }
  }

  /** Runs one asynchronous case and counts its outcome. */
  async runAsync(fn: () => Promise<unknown>): Promise<unknown> {
    const start = performance.now();
    try {
      const value = await fn();
      this.count('ok', performance.now() - start, fn);
      return value;
    } catch (error) {
      this.count(this.codeOf(error), performance.now() - start, fn);
      return undefined;
    }
  }

  /**
   * Counts an outcome the caller classified itself (e.g. an HTTP status); `replay` runs the same
   * input again for {@link slowestReplayedMs}.
   */
  count(outcome: string, ms = 0, replay?: () => unknown): void {
    this.cases++;
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    if (ms > this.slowestMs) {
      this.slowestMs = ms;
      this.slowestReplay = replay;
    }
  }

  /**
   * The slowest case timed again: the best of its first time and `times` replays of the same
   * input. A case that was slow because the machine was busy (preempted, a GC pause) is fast on
   * replay; an input that is slow to handle (a regex blow-up, an alias bomb) is slow every time.
   * Without a replay it is {@link slowestMs}.
   */
  async slowestReplayedMs(times = 3): Promise<number> {
    let best = this.slowestMs;
    const replay = this.slowestReplay;
    if (replay === undefined) return best;
    for (let i = 0; i < times; i++) {
      const start = performance.now();
      try {
        await replay();
      } catch {
        // the outcome was counted the first time; only the time matters here
      }
      best = Math.min(best, performance.now() - start);
    }
    return best;
  }

  /** The code of an accepted typed error; throws for anything else. */
  codeOf(error: unknown): string {
    const code = this.typedCode(error);
    if (code !== undefined) return code;
    const what =
      error instanceof Error
        ? `${error.name}${(error as { code?: unknown }).code ? ` ${String((error as { code?: unknown }).code)}` : ''}: ${error.message}`
        : String(error);
    throw new Error(`${this.parser}: not a typed error: ${what}`, { cause: error });
  }

  /** `ok 4021 · INVALID_REQUEST 5979`, most frequent first. */
  describe(): string {
    return [...this.outcomes]
      .sort((a, b) => b[1] - a[1])
      .map(([outcome, n]) => `${outcome} ${n}`)
      .join(' · ');
  }

  /**
   * Records the cases (against `minCases` when given), outcomes, slowest case (when cases were
   * timed) and elapsed time in the `bad input` section.
   */
  record(minCases?: number): void {
    const section = 'bad input';
    recordFigure({
      section,
      name: `${this.parser}: cases`,
      value: this.cases,
      ...(minCases === undefined ? {} : { target: `>= ${minCases}` }),
    });
    recordFigure({
      section,
      name: `${this.parser}: outcomes`,
      value: this.describe(),
      target: 'ok or typed codes only',
    });
    if (this.slowestMs > 0)
      recordFigure({
        section,
        name: `${this.parser}: slowest case (ms)`,
        value: this.slowestMs.toFixed(1),
      });
    recordFigure({
      section,
      name: `${this.parser}: time (s)`,
      value: ((performance.now() - this.startedAt) / 1000).toFixed(2),
    });
  }
}

/** Records `<subject> heap growth over the batch (MB)` in the `bad input` section (bound: 20 MB). */
export function recordHeapGrowth(subject: string, growthMb: number): void {
  recordFigure({
    section: 'bad input',
    name: `${subject} heap growth over the batch (MB)`,
    value: growthMb.toFixed(2),
    target: '< 20',
  });
}
