/** When a request must be answered: clock time `at` (Infinity for none) and its length. */
export interface Deadline {
  readonly at: number;
  readonly timeoutMs: number;
}
