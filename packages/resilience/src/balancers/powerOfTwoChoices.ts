import { countEligible, nthEligible, randomIndex } from './eligible.js';

/**
 * "Power of two choices": samples two distinct eligible candidates (not in `exclude`) uniformly
 * at random and returns the one with the lower `cost`. A tie goes to the first sample, which is
 * itself uniformly random, so ties are broken at random. With one eligible candidate it is
 * returned without calling `cost`; with none, undefined. O(1) without `exclude`, O(n) with it;
 * allocation-free.
 */
export function powerOfTwoChoices<E>(
  candidates: readonly E[],
  exclude: ReadonlySet<E> | undefined,
  random: () => number,
  cost: (endpoint: E) => number,
): E | undefined {
  const n = candidates.length;
  let a: E;
  let b: E;
  if (exclude === undefined || exclude.size === 0) {
    if (n <= 1) return candidates[0];
    const i = randomIndex(random, n);
    let j = randomIndex(random, n - 1);
    if (j >= i) j++;
    a = candidates[i]!;
    b = candidates[j]!;
  } else {
    const eligible = countEligible(candidates, exclude);
    if (eligible <= 1) return eligible === 0 ? undefined : nthEligible(candidates, exclude, 0);
    const i = randomIndex(random, eligible);
    let j = randomIndex(random, eligible - 1);
    if (j >= i) j++;
    a = nthEligible(candidates, exclude, i)!;
    b = nthEligible(candidates, exclude, j)!;
  }
  return cost(b) < cost(a) ? b : a;
}
