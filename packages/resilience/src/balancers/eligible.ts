// Allocation-free helpers for sampling the candidates of a pick that are not excluded.

/** A uniform index in [0, n) from `random()`, robust to a `random` returning 1 or NaN. */
export function randomIndex(random: () => number, n: number): number {
  const i = Math.floor(random() * n);
  return i >= n ? n - 1 : i > 0 ? i : 0;
}

/** Number of `candidates` not in `exclude`. O(n). */
export function countEligible<E>(candidates: readonly E[], exclude: ReadonlySet<E>): number {
  let count = 0;
  for (let i = 0; i < candidates.length; i++) if (!exclude.has(candidates[i]!)) count++;
  return count;
}

/** The `k`-th (0-based) candidate not in `exclude`, or undefined. O(n). */
export function nthEligible<E>(
  candidates: readonly E[],
  exclude: ReadonlySet<E>,
  k: number,
): E | undefined {
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[i]!;
    if (!exclude.has(candidate) && k-- === 0) return candidate;
  }
  return undefined;
}

/** A uniformly random candidate not in `exclude`, or undefined when none is eligible. */
export function randomEligible<E>(
  candidates: readonly E[],
  exclude: ReadonlySet<E> | undefined,
  random: () => number,
): E | undefined {
  const n = candidates.length;
  if (n === 0) return undefined;
  if (exclude === undefined || exclude.size === 0) return candidates[randomIndex(random, n)];
  const eligible = countEligible(candidates, exclude);
  if (eligible === 0) return undefined;
  return nthEligible(candidates, exclude, randomIndex(random, eligible));
}
