/** A set-cover problem: for each key, the indices of the hosts that serve it; a cost per host. */
export interface CoverProblem {
  /** `replicas[k]`: indices (into `costs`) of the hosts serving key `k`; each non-empty. */
  readonly replicas: readonly (readonly number[])[];
  /** Cost of each host (lower is better); covers compare by (host count, total cost). */
  readonly costs: readonly number[];
}

/** Limits of the exact search. */
export interface CoverLimits {
  /** Search nodes before falling back to the best cover found. Default 200 000. */
  readonly maxNodes?: number;
  /** Wall-clock budget of the whole computation in ms (the greedy cover always completes). Default 20. */
  readonly maxMs?: number;
  /** Random source for tie-breaks. Default `Math.random`. */
  readonly random?: () => number;
  /** Time source for `maxMs`. Default `performance.now`. */
  readonly now?: () => number;
}

/** A cover: chosen hosts, which of them serves each key, and whether it is proven minimal. */
export interface CoverSolution {
  readonly hosts: number[];
  /** `assignment[k]`: the chosen host serving key `k`. */
  readonly assignment: number[];
  /** True when the exact search finished: no cover has fewer hosts, or as many at a lower cost. */
  readonly exact: boolean;
}

function shuffle(items: number[], random: () => number): number[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}

/**
 * Minimum set cover (lupyne's multicast): the fewest hosts such that every key has a replica
 * among them, then the lowest total cost, random among ties. Greedy first (ln(n)-approximate,
 * polynomial), then an exact branch and bound seeded with it, which stops at `maxNodes` or `maxMs`
 * and keeps the best cover found. Small inputs are solved exactly; large ones answer within the
 * time bound.
 */
export function setCover(problem: CoverProblem, limits: CoverLimits = {}): CoverSolution {
  const { replicas, costs } = problem;
  const random = limits.random ?? Math.random;
  const now = limits.now ?? (() => performance.now());
  const maxNodes = limits.maxNodes ?? 200_000;
  const maxMs = limits.maxMs ?? 20;
  const deadline = now() + maxMs;
  const m = replicas.length;
  const h = costs.length;
  if (m === 0) return { hosts: [], assignment: [], exact: true };
  const hostKeys: number[][] = Array.from({ length: h }, () => []);
  for (let k = 0; k < m; k++) for (const host of replicas[k]!) hostKeys[host]!.push(k);
  let minCost = Infinity;
  for (let i = 0; i < h; i++)
    if (hostKeys[i]!.length > 0 && costs[i]! < minCost) minCost = costs[i]!;
  const cost = costs.map(c => c - minCost); // >= 0 for the hosts that matter: partial sums are lower bounds
  const tieOrder = shuffle(
    Array.from({ length: h }, (_, i) => i),
    random,
  );
  const rank = new Array<number>(h);
  tieOrder.forEach((host, i) => (rank[host] = i));

  // ---- greedy: most uncovered keys, then lowest cost, then random rank
  const covered = new Uint8Array(m);
  let uncovered = m;
  const greedy: number[] = [];
  while (uncovered > 0) {
    let best = -1;
    let bestGain = 0;
    for (let i = 0; i < h; i++) {
      let gain = 0;
      for (const k of hostKeys[i]!) if (covered[k] === 0) gain++;
      if (gain === 0) continue;
      if (
        gain > bestGain ||
        (gain === bestGain &&
          (cost[i]! < cost[best]! || (cost[i] === cost[best] && rank[i]! < rank[best]!)))
      ) {
        best = i;
        bestGain = gain;
      }
    }
    greedy.push(best);
    for (const k of hostKeys[best]!) {
      if (covered[k] === 0) {
        covered[k] = 1;
        uncovered--;
      }
    }
  }
  // Drop redundant hosts, most expensive first.
  const count = new Int32Array(m);
  for (const host of greedy) for (const k of hostKeys[host]!) count[k] = count[k]! + 1;
  const pruned = greedy
    .slice()
    .sort((a, b) => cost[b]! - cost[a]! || rank[a]! - rank[b]!)
    .filter(host => {
      if (hostKeys[host]!.every(k => count[k]! > 1)) {
        for (const k of hostKeys[host]!) count[k] = count[k]! - 1;
        return false;
      }
      return true;
    });
  let bestHosts = pruned;
  let bestCount = pruned.length;
  let bestSum = pruned.reduce((s, host) => s + cost[host]!, 0);

  // ---- exact branch and bound (keys with the fewest replicas first)
  let maxKeys = 1;
  for (const keys of hostKeys) if (keys.length > maxKeys) maxKeys = keys.length;
  const cover = new Int32Array(m);
  const chosen: number[] = [];
  const inChosen = new Uint8Array(h);
  let remaining = m;
  let nodes = 0;
  let aborted = false;
  const order = replicas.map(r =>
    shuffle(r.slice(), random).sort(
      (a, b) => cost[a]! - cost[b]! || hostKeys[b]!.length - hostKeys[a]!.length,
    ),
  );

  const search = (sum: number): void => {
    if (aborted) return;
    if (++nodes > maxNodes || ((nodes & 63) === 0 && now() > deadline)) {
      aborted = true;
      return;
    }
    if (remaining === 0) {
      if (chosen.length < bestCount || (chosen.length === bestCount && sum < bestSum)) {
        bestHosts = chosen.slice();
        bestCount = chosen.length;
        bestSum = sum;
      }
      return;
    }
    const lower = chosen.length + Math.ceil(remaining / maxKeys);
    if (lower > bestCount || (lower === bestCount && sum >= bestSum)) return;
    // The uncovered key with the fewest replicas.
    let key = -1;
    let fewest = Infinity;
    for (let k = 0; k < m; k++) {
      if (cover[k] !== 0) continue;
      const r = replicas[k]!.length;
      if (r < fewest) {
        fewest = r;
        key = k;
        if (r === 1) break;
      }
    }
    for (const host of order[key]!) {
      if (inChosen[host] === 1) continue;
      chosen.push(host);
      inChosen[host] = 1;
      for (const k of hostKeys[host]!) if ((cover[k] = cover[k]! + 1) === 1) remaining--;
      search(sum + cost[host]!);
      for (const k of hostKeys[host]!) if ((cover[k] = cover[k]! - 1) === 0) remaining++;
      inChosen[host] = 0;
      chosen.pop();
      if (aborted) return;
    }
  };
  search(0);

  // ---- assignment: each key goes to its cheapest chosen replica
  const selected = new Uint8Array(h);
  for (const host of bestHosts) selected[host] = 1;
  const assignment = new Array<number>(m);
  for (let k = 0; k < m; k++) {
    let pick = -1;
    for (const host of replicas[k]!) {
      if (
        selected[host] === 1 &&
        (pick < 0 ||
          cost[host]! < cost[pick]! ||
          (cost[host] === cost[pick] && rank[host]! < rank[pick]!))
      )
        pick = host;
    }
    assignment[k] = pick;
  }
  return { hosts: bestHosts, assignment, exact: !aborted };
}
