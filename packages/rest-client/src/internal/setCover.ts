/** A set-cover problem: for each key, the indices of the hosts that serve it; a cost per host. */
export interface CoverProblem {
  /** `replicas[k]`: indices (into `costs`) of the hosts serving key `k`; each non-empty. */
  readonly replicas: readonly (readonly number[])[];
  /** Cost of each host (lower is better); covers compare by (host count, total cost). */
  readonly costs: readonly number[];
}

/**
 * How a cover is computed.
 * - `'auto'`: the greedy cover, then an exact search when it is cheap: at most
 *   {@link EXACT_MAX_HOSTS} candidate hosts and a bounded amount of work (no clock).
 * - `'greedy'`: the greedy cover only.
 * - `'exact'`: the greedy cover, then an exact branch and bound bounded by `maxNodes` and `maxMs`.
 */
export type CoverMode = 'auto' | 'greedy' | 'exact';

/** Limits of a cover. */
export interface CoverLimits {
  /** Default `'auto'`. */
  readonly mode?: CoverMode;
  /** `'exact'` only: search nodes before keeping the best cover found. Default 200 000. */
  readonly maxNodes?: number;
  /** `'exact'` only: time bound of the search in ms (the greedy cover always completes). Default 20. */
  readonly maxMs?: number;
  /** Random source for tie-breaks (one draw per cover). Default `Math.random`. */
  readonly random?: () => number;
  /** Time source for `maxMs`. Default `performance.now`. */
  readonly now?: () => number;
}

/** A cover: chosen hosts, which of them serves each key, and whether it is proven minimal. */
export interface CoverSolution {
  readonly hosts: number[];
  /** `assignment[k]`: the chosen host serving key `k`. */
  readonly assignment: number[];
  /** True when proven: no cover has fewer hosts, or as many at a lower cost. */
  readonly exact: boolean;
}

/** What {@link solveCover} returns: `assignment` is a view of the scratch, valid until its next use. */
export interface CompactSolution {
  readonly hosts: number[];
  readonly assignment: Int32Array;
  readonly exact: boolean;
}

/** `'auto'` runs the exact search only up to this many candidate hosts. */
export const EXACT_MAX_HOSTS = 16;
/**
 * `'auto'`: mask visits the small exact search may make, a fixed part plus a part proportional to
 * the (key, host) pairs, so that it costs a small multiple of the greedy cover (a visit is a few ns).
 */
const EXACT_WORK_BASE = 8_192;
const EXACT_WORK_PER_PAIR = 8;
/** Hosts the bitmask search handles (masks are 32-bit integers). */
const SMALL_MAX_HOSTS = 30;

/**
 * A cover problem in compressed form, local to one call: keys `0..n-1`, hosts `0..hostCount-1`,
 * `keyHosts[keyStart[i] .. keyStart[i + 1]]` the eligible hosts of key `i` (each key has one).
 */
export interface CompactProblem {
  readonly n: number;
  readonly keyStart: Int32Array;
  readonly keyHosts: Int32Array;
  readonly hostCount: number;
  /** Cost per host (lower is better). */
  readonly cost: Float64Array;
  /** Tie-break rank per host (lower wins), distinct, random per call. */
  readonly rank: Uint32Array;
  /**
   * The same pairs by host (CSR: the keys of host `l` are `hostKeys[hostStart[l] ..
   * hostStart[l + 1]]`), when the caller has them already (`Shards` keeps its placement's);
   * otherwise built per call in the scratch.
   */
  readonly hostStart?: Int32Array;
  readonly hostKeys?: Int32Array;
}

/** Reusable buffers of {@link solveCover}: sized once, no allocation per call beyond the result. */
export class CoverScratch {
  private hostCap = 0;
  private keyCap = 0;
  private pairCap = 0;
  gain = new Int32Array(0);
  snap = new Int32Array(0);
  heap = new Int32Array(0);
  /** The host → keys CSR of the current call: the problem's own, or the buffers below. */
  hostStart: Int32Array = new Int32Array(1);
  hostKeys: Int32Array = new Int32Array(0);
  hostStartBuf = new Int32Array(1);
  hostFill = new Int32Array(0);
  hostKeysBuf = new Int32Array(0);
  order = new Int32Array(0);
  tieKey = new Float64Array(0);
  owner = new Int32Array(0);
  count = new Int32Array(0);
  sole = new Int32Array(0);
  excl = new Int32Array(0);
  tally = new Int32Array(0);
  touched = new Int32Array(0);
  candidates = new Int32Array(0);
  selected = new Uint8Array(0);

  constructor(hosts = 0, keys = 0, pairs = 0) {
    this.ensure(hosts, keys, pairs);
  }

  ensure(hosts: number, keys: number, pairs: number): void {
    if (hosts > this.hostCap) {
      this.hostCap = Math.max(hosts, this.hostCap * 2);
      this.gain = new Int32Array(this.hostCap);
      this.snap = new Int32Array(this.hostCap);
      this.heap = new Int32Array(this.hostCap);
      this.hostStartBuf = new Int32Array(this.hostCap + 1);
      this.order = new Int32Array(this.hostCap);
      this.tieKey = new Float64Array(this.hostCap);
      this.hostFill = new Int32Array(this.hostCap);
      this.selected = new Uint8Array(this.hostCap);
      this.excl = new Int32Array(this.hostCap);
      this.tally = new Int32Array(this.hostCap);
      this.touched = new Int32Array(this.hostCap);
      this.candidates = new Int32Array(this.hostCap);
    }
    if (keys > this.keyCap) {
      this.keyCap = Math.max(keys, this.keyCap * 2);
      this.owner = new Int32Array(this.keyCap);
      this.count = new Int32Array(this.keyCap);
      this.sole = new Int32Array(this.keyCap);
    }
    if (pairs > this.pairCap) {
      this.pairCap = Math.max(pairs, this.pairCap * 2);
      this.hostKeysBuf = new Int32Array(this.pairCap);
    }
  }
}

/** A distinct 32-bit rank per index, random per seed (murmur3's finaliser is a bijection). */
export function tieRank(index: number, seed: number): number {
  let x = (index ^ seed) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A random 32-bit seed from `random` (one draw). */
export function tieSeed(random: () => number): number {
  return Math.floor(random() * 4294967296) >>> 0;
}

/**
 * Minimum set cover (lupyne's multicast): the fewest hosts such that every key has a replica
 * among them, then the lowest total cost, random among ties.
 *
 * The greedy cover (most uncovered keys; on ties the lowest cost, then the host holding more of
 * the keys, then a random rank; within H(largest host) ≈ ln n of the minimum) in O(P log H) at
 * most for P (key, host) pairs and H hosts: gains are kept per host and decremented as keys get
 * covered, the best host is found by a scan of the hosts (small inputs) or a lazy heap. Then two
 * linear passes: hosts made redundant by later picks are dropped (most expensive, latest picked
 * first), and two hosts are replaced by one where a host outside the cover serves every key only
 * they serve. Then, per `mode`, an exact search seeded with it (see {@link CoverMode}). Each key
 * goes to its cheapest chosen replica (random rank among equals).
 */
export function solveCover(
  p: CompactProblem,
  s: CoverScratch,
  limits: CoverLimits = {},
): CompactSolution {
  const { n, keyStart, keyHosts, hostCount: h, cost, rank } = p;
  if (n === 0) return { hosts: [], assignment: s.owner.subarray(0, 0), exact: true };
  const pairs = keyStart[n]!;
  s.ensure(h, n, pairs);
  const { gain, owner } = s;

  // host → keys (CSR), gains = number of keys per host
  let hostStart: Int32Array;
  if (p.hostStart !== undefined && p.hostKeys !== undefined) {
    hostStart = s.hostStart = p.hostStart;
    s.hostKeys = p.hostKeys;
    for (let l = 0; l < h; l++) gain[l] = hostStart[l + 1]! - hostStart[l]!;
  } else {
    const { hostFill } = s;
    hostStart = s.hostStart = s.hostStartBuf;
    const hostKeys = (s.hostKeys = s.hostKeysBuf);
    gain.fill(0, 0, h);
    for (let r = 0; r < pairs; r++) gain[keyHosts[r]!]!++;
    hostStart[0] = 0;
    for (let l = 0; l < h; l++) {
      hostStart[l + 1] = hostStart[l]! + gain[l]!;
      hostFill[l] = hostStart[l]!;
    }
    for (let i = 0; i < n; i++)
      for (let r = keyStart[i]!; r < keyStart[i + 1]!; r++) hostKeys[hostFill[keyHosts[r]!]!++] = i;
  }

  // ---- greedy (ties: tieBefore). A scan of the hosts per pick costs picks × H cheap steps, the
  // lazy heap about P log H dearer ones: the one likely cheaper runs (same result; measured, the
  // scan wins up to about H² ≈ 32 P).
  owner.fill(-1, 0, n);
  s.count.fill(0, 0, n);
  s.sole.fill(0, 0, n);
  const greedy = Math.min(h, n) * h <= 32 * pairs ? greedyScan(p, s) : greedyHeap(p, s);

  let best = prune(greedy, s, cost);
  if (best.length > 2) {
    const improved = replacePairs(p, s, best);
    if (improved !== best) best = prune(improved, s, cost);
  }
  // Greedy covers of one host are minimal: the first pick covers everything at the lowest cost.
  let exact = best.length <= 1;

  const mode = limits.mode ?? 'auto';
  if (!exact && mode !== 'greedy') {
    let minCost = Infinity;
    for (let l = 0; l < h; l++) if (cost[l]! < minCost) minCost = cost[l]!;
    if (mode === 'auto') {
      if (h <= EXACT_MAX_HOSTS) {
        const found = exactSmall(p, best, minCost, EXACT_WORK_BASE + EXACT_WORK_PER_PAIR * pairs);
        best = found.hosts;
        exact = found.exact;
      }
    } else {
      const found = exactSearch(p, s, best, minCost, limits);
      best = found.hosts;
      exact = found.exact;
    }
  }

  // ---- assignment: each key goes to its cheapest chosen replica (lowest rank among equals): the
  // chosen hosts in that order, each taking the keys not taken yet.
  const assignment = owner; // the greedy's owners are no longer needed
  assignment.fill(-1, 0, n);
  const { order, hostKeys } = s;
  const m = best.length;
  for (let j = 0; j < m; j++) {
    // insertion sort by (cost, rank): covers are short, and often already in order
    const l = best[j]!;
    let at = j;
    for (; at > 0; at--) {
      const o = order[at - 1]!;
      if (cost[o]! < cost[l]! || (cost[o] === cost[l] && rank[o]! < rank[l]!)) break;
      order[at] = o;
    }
    order[at] = l;
  }
  for (let j = 0; j < m; j++) {
    const l = order[j]!;
    for (let q = hostStart[l]!; q < hostStart[l + 1]!; q++) {
      const i = hostKeys[q]!;
      if (assignment[i]! < 0) assignment[i] = l;
    }
  }
  return { hosts: best, assignment: assignment.subarray(0, n), exact };
}

/**
 * The order among hosts of equal gain: lower cost (priority) first, then the host holding more of
 * the keys asked (it tends to leave fewer hosts to pick: measured, fewer hosts than a random
 * order), then the random rank.
 */
function tieBefore(
  a: number,
  b: number,
  cost: Float64Array,
  hostStart: Int32Array,
  rank: Uint32Array,
): boolean {
  if (cost[a] !== cost[b]) return cost[a]! < cost[b]!;
  const da = hostStart[a + 1]! - hostStart[a]!;
  const db = hostStart[b + 1]! - hostStart[b]!;
  return da > db || (da === db && rank[a]! < rank[b]!);
}

/**
 * Marks the keys of `top` covered (by it) and lowers the gains of their other replicas; counts
 * `top` in `count` and `sole` of its keys (what {@link prune} and {@link replacePairs} read).
 */
function take(p: CompactProblem, s: CoverScratch, top: number): number {
  const { keyStart, keyHosts } = p;
  const { gain, hostStart, hostKeys, owner, count, sole } = s;
  let covered = 0;
  for (let q = hostStart[top]!; q < hostStart[top + 1]!; q++) {
    const i = hostKeys[q]!;
    count[i]!++;
    sole[i]! += top;
    if (owner[i]! >= 0) continue;
    owner[i] = top;
    covered++;
    for (let r = keyStart[i]!; r < keyStart[i + 1]!; r++) gain[keyHosts[r]!]!--;
  }
  return covered;
}

/**
 * The greedy cover by scanning the hosts per pick; hosts whose gain fell to 0 leave the scanned
 * list as they are met. When every host costs the same, the order of equal gains
 * ({@link tieBefore}: more keys, then the lower rank) is one number per host.
 */
function greedyScan(p: CompactProblem, s: CoverScratch): number[] {
  const { n, hostCount: h, cost, rank } = p;
  const { gain, hostStart, tieKey } = s;
  const active = s.heap; // unused by the scan's caller otherwise
  let size = 0;
  for (let l = 0; l < h; l++) if (gain[l]! > 0) active[size++] = l;
  let uniform = n < 0x200000; // key counts times 2^32 stay exact in a double
  for (let l = 1; l < h && uniform; l++) if (cost[l] !== cost[0]) uniform = false;
  if (uniform)
    for (let l = 0; l < h; l++)
      tieKey[l] = (hostStart[l + 1]! - hostStart[l]!) * 4294967296 - rank[l]!;
  const greedy: number[] = [];
  for (let left = n; left > 0;) {
    let top = -1;
    let best = 0;
    let bestKey = 0;
    for (let j = 0; j < size; ) {
      const l = active[j]!;
      const g = gain[l]!;
      if (g === 0) {
        active[j] = active[--size]!;
        continue;
      }
      j++;
      if (
        g > best ||
        (g === best &&
          (uniform ? tieKey[l]! > bestKey : tieBefore(l, top, cost, hostStart, rank)))
      ) {
        top = l;
        best = g;
        bestKey = tieKey[l]!;
      }
    }
    greedy.push(top);
    left -= take(p, s, top);
  }
  return greedy;
}

/**
 * The greedy cover with a max-heap on (gain desc, then tieBefore) holding each host's gain as
 * of its last check: gains only fall, so a host at the top whose gain is current is the best pick;
 * one whose gain fell is pushed down with its current gain (or dropped at 0).
 */
function greedyHeap(p: CompactProblem, s: CoverScratch): number[] {
  const { n, hostCount: h, cost, rank } = p;
  const { gain, snap, heap, hostStart } = s;
  const before = (a: number, b: number): boolean =>
    snap[a]! > snap[b]! || (snap[a] === snap[b] && tieBefore(a, b, cost, hostStart, rank));
  const siftDown = (at: number, size: number): void => {
    const item = heap[at]!;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      if (child + 1 < size && before(heap[child + 1]!, heap[child]!)) child++;
      if (!before(heap[child]!, item)) break;
      heap[at] = heap[child]!;
      at = child;
    }
    heap[at] = item;
  };
  let size = 0;
  for (let l = 0; l < h; l++) {
    if (gain[l]! > 0) {
      snap[l] = gain[l]!;
      heap[size++] = l;
    }
  }
  for (let at = (size >> 1) - 1; at >= 0; at--) siftDown(at, size);
  const greedy: number[] = [];
  let left = n;
  while (left > 0) {
    const top = heap[0]!;
    if (snap[top] !== gain[top]) {
      if (gain[top]! > 0) snap[top] = gain[top]!;
      else heap[0] = heap[--size]!;
      siftDown(0, size);
      continue;
    }
    heap[0] = heap[--size]!;
    siftDown(0, size);
    greedy.push(top);
    left -= take(p, s, top);
  }
  return greedy;
}

/**
 * Drops hosts whose every key another chosen host serves: most expensive, latest picked first.
 * `count[i]` / `sole[i]` (the number / the sum of the chosen hosts serving key `i`) describe
 * `greedy` on entry and the result on return.
 */
function prune(greedy: number[], s: CoverScratch, cost: Float64Array): number[] {
  const { hostStart, hostKeys, count, sole } = s;
  const order = new Int32Array(greedy.length);
  let sameCost = true;
  for (let at = 0; at < order.length; at++) {
    order[at] = order.length - 1 - at;
    if (cost[greedy[at]!] !== cost[greedy[0]!]) sameCost = false;
  }
  if (!sameCost) order.sort((a, b) => cost[greedy[b]!]! - cost[greedy[a]!]! || b - a);
  const dropped = new Uint8Array(greedy.length);
  let kept = greedy.length;
  for (const at of order) {
    const l = greedy[at]!;
    let redundant = true;
    for (let q = hostStart[l]!; q < hostStart[l + 1]!; q++)
      if (count[hostKeys[q]!]! < 2) {
        redundant = false;
        break;
      }
    if (!redundant) continue;
    dropped[at] = 1;
    kept--;
    for (let q = hostStart[l]!; q < hostStart[l + 1]!; q++) {
      const i = hostKeys[q]!;
      count[i]!--;
      sole[i]! -= l;
    }
  }
  if (kept === greedy.length) return greedy;
  const result: number[] = [];
  for (let at = 0; at < greedy.length; at++) if (dropped[at] === 0) result.push(greedy[at]!);
  return result;
}

/**
 * One linear pass of local search on a cover without redundant hosts: for each host `g` outside
 * it, if `g` serves every key that only one chosen host serves for two or more chosen hosts, add
 * `g` and drop those of them that became redundant, when that drops at least two (the cover
 * shrinks). O(P + H): each host's keys are read a bounded number of times (`excl[o]`, the keys
 * only `o` serves, is kept up to date, so a host is redundant when it is 0). Keeps the order of
 * the cover, added hosts last.
 */
function replacePairs(p: CompactProblem, s: CoverScratch, cover: number[]): number[] {
  const { n, hostCount: h } = p;
  const { hostStart, hostKeys, count, sole, excl, tally, selected } = s;
  // count[i] and sole[i] (the only chosen host of key i while count[i] is 1: the sum of its chosen
  // hosts) are left by prune for this cover.
  excl.fill(0, 0, h);
  for (const l of cover) selected[l] = 1;
  for (let i = 0; i < n; i++) if (count[i] === 1) excl[sole[i]!]!++;
  const add = (g: number): void => {
    selected[g] = 1;
    for (let q = hostStart[g]!; q < hostStart[g + 1]!; q++) {
      const i = hostKeys[q]!;
      const c = count[i]!;
      if (c === 1) excl[sole[i]!]!--;
      count[i] = c + 1;
      sole[i]! += g;
    }
  };
  const remove = (g: number): void => {
    selected[g] = 0;
    for (let q = hostStart[g]!; q < hostStart[g + 1]!; q++) {
      const i = hostKeys[q]!;
      const c = count[i]! - 1;
      count[i] = c;
      sole[i]! -= g;
      if (c === 1) excl[sole[i]!]!++;
    }
  };
  const added: number[] = [];
  const { touched, candidates } = s; // hosts, each at most once per g
  let changed = false;
  for (let g = 0; g < h; g++) {
    if (selected[g] === 1) continue;
    let touchedCount = 0;
    let candidateCount = 0;
    for (let q = hostStart[g]!; q < hostStart[g + 1]!; q++) {
      const i = hostKeys[q]!;
      if (count[i] !== 1) continue;
      const o = sole[i]!;
      const t = ++tally[o]!;
      if (t === 1) touched[touchedCount++] = o;
      if (t === excl[o]) candidates[candidateCount++] = o;
    }
    for (let j = 0; j < touchedCount; j++) tally[touched[j]!] = 0;
    if (candidateCount < 2) continue;
    add(g);
    let removedCount = 0; // the removed ones are moved to the front of candidates
    for (let j = 0; j < candidateCount; j++) {
      const o = candidates[j]!;
      if (excl[o] === 0) {
        // no key has o as its only chosen host any more: redundant
        remove(o);
        candidates[removedCount++] = o;
      }
    }
    if (removedCount >= 2) {
      added.push(g);
      changed = true;
    } else {
      for (let j = 0; j < removedCount; j++) add(candidates[j]!);
      remove(g);
    }
  }
  const result: number[] = [];
  for (const l of cover) if (selected[l] === 1) result.push(l);
  for (const l of added) if (selected[l] === 1) result.push(l);
  for (let l = 0; l < h; l++) selected[l] = 0;
  return changed ? result : cover;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/**
 * Exact cover for at most 30 hosts on bitmasks: each key is the mask of its replicas (distinct
 * masks only); branch on the uncovered mask with the fewest allowed hosts, each host once per
 * path (a host tried in one branch is forbidden in its later siblings), pruned by a lower bound
 * of pairwise disjoint uncovered masks; each level keeps only the masks still uncovered. Stops
 * after `workCap` mask visits (or at `deadline`), keeping the best cover found.
 */
function exactSmall(
  p: CompactProblem,
  seed: number[],
  minCost: number,
  workCap: number,
  deadline = Infinity,
  now: () => number = () => performance.now(),
): { hosts: number[]; exact: boolean } {
  const { n, keyStart, keyHosts, hostCount: h, cost, rank } = p;
  const all = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let r = keyStart[i]!; r < keyStart[i + 1]!; r++) m |= 1 << keyHosts[r]!;
    all[i] = m;
  }
  all.sort();
  let d = 0;
  for (let i = 0; i < n; i++) if (i === 0 || all[i] !== all[i - 1]) all[d++] = all[i]!;
  // Level L of the search keeps the masks still uncovered at depth L: buf[L * d, L * d + len).
  const buf = new Int32Array((h + 2) * d);
  buf.set(all.subarray(0, d));
  const order = Array.from({ length: h }, (_, l) => l).sort(
    (a, b) => cost[a]! - cost[b]! || rank[a]! - rank[b]!,
  );
  let bestMask = 0;
  for (const l of seed) bestMask |= 1 << l;
  let bestCount = seed.length;
  let bestSum = seed.reduce((sum, l) => sum + cost[l]! - minCost, 0);
  let work = 0;
  let nodes = 0;
  let aborted = false;
  const search = (
    level: number,
    len: number,
    chosen: number,
    forbidden: number,
    chosenCount: number,
    sum: number,
  ): void => {
    work += len;
    if (work > workCap || ((++nodes & 255) === 0 && now() > deadline)) {
      aborted = true;
      return;
    }
    if (len === 0) {
      if (chosenCount < bestCount || (chosenCount === bestCount && sum < bestSum)) {
        bestMask = chosen;
        bestCount = chosenCount;
        bestSum = sum;
      }
      return;
    }
    const base = level * d;
    let pivot = 0;
    let fewest = 33;
    let used = 0;
    let lower = 0;
    for (let j = base; j < base + len; j++) {
      const allowed = buf[j]! & ~forbidden;
      if (allowed === 0) return; // this key can no longer be covered on this path
      if (fewest > 1) {
        const bits = popcount(allowed);
        if (bits < fewest) {
          fewest = bits;
          pivot = allowed;
        }
      }
      if ((allowed & used) === 0) {
        lower++;
        used |= allowed;
      }
    }
    const bound = chosenCount + lower;
    if (bound > bestCount || (bound === bestCount && sum >= bestSum)) return;
    const next = base + d;
    let banned = forbidden;
    for (const l of order) {
      const bit = 1 << l;
      if ((pivot & bit) === 0) continue;
      let kept = 0;
      for (let j = base; j < base + len; j++) {
        const m = buf[j]!;
        if ((m & bit) === 0) buf[next + kept++] = m;
      }
      work += len;
      search(level + 1, kept, chosen | bit, banned, chosenCount + 1, sum + cost[l]! - minCost);
      if (aborted) return;
      banned |= bit;
    }
  };
  search(0, d, 0, 0, 0, 0);
  const hosts: number[] = [];
  for (let l = 0; l < h; l++) if ((bestMask >>> l) & 1) hosts.push(l);
  // Keep the greedy's order when it is still the answer.
  const same = hosts.length === seed.length && seed.every(l => (bestMask >>> l) & 1);
  return { hosts: same ? seed : hosts, exact: !aborted };
}

/**
 * Exact branch and bound (keys with the fewest replicas first) seeded with a cover, stopped at
 * `maxNodes` or `maxMs` keeping the best cover found. For callers who ask for exact covers.
 */
function exactSearch(
  p: CompactProblem,
  s: CoverScratch,
  seed: number[],
  minCost: number,
  limits: CoverLimits,
): { hosts: number[]; exact: boolean } {
  const { n, keyStart, keyHosts, hostCount: h, cost, rank } = p;
  const now = limits.now ?? (() => performance.now());
  const maxNodes = limits.maxNodes ?? 200_000;
  const deadline = now() + (limits.maxMs ?? 20);
  if (h <= SMALL_MAX_HOSTS) return exactSmall(p, seed, minCost, maxNodes * 64, deadline, now);
  const { hostStart, hostKeys } = s;
  const c = (l: number) => cost[l]! - minCost; // >= 0: partial sums are lower bounds
  let maxKeys = 1;
  for (let l = 0; l < h; l++) maxKeys = Math.max(maxKeys, hostStart[l + 1]! - hostStart[l]!);
  let bestHosts = seed;
  let bestCount = seed.length;
  let bestSum = seed.reduce((sum, l) => sum + c(l), 0);
  const cover = new Int32Array(n);
  const chosen: number[] = [];
  const inChosen = new Uint8Array(h);
  let remaining = n;
  let nodes = 0;
  let aborted = false;
  const order: number[][] = [];
  for (let i = 0; i < n; i++) {
    const reps: number[] = [];
    for (let r = keyStart[i]!; r < keyStart[i + 1]!; r++) reps.push(keyHosts[r]!);
    reps.sort(
      (a, b) =>
        cost[a]! - cost[b]! ||
        hostStart[b + 1]! - hostStart[b]! - (hostStart[a + 1]! - hostStart[a]!) ||
        rank[a]! - rank[b]!,
    );
    order.push(reps);
  }
  const search = (sum: number): void => {
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
    let key = -1;
    let fewest = Infinity;
    for (let i = 0; i < n; i++) {
      if (cover[i] !== 0) continue;
      const r = order[i]!.length;
      if (r < fewest) {
        fewest = r;
        key = i;
        if (r === 1) break;
      }
    }
    for (const l of order[key]!) {
      if (inChosen[l] === 1) continue;
      chosen.push(l);
      inChosen[l] = 1;
      for (let q = hostStart[l]!; q < hostStart[l + 1]!; q++) {
        const i = hostKeys[q]!;
        if ((cover[i] = cover[i]! + 1) === 1) remaining--;
      }
      search(sum + c(l));
      for (let q = hostStart[l]!; q < hostStart[l + 1]!; q++) {
        const i = hostKeys[q]!;
        if ((cover[i] = cover[i]! - 1) === 0) remaining++;
      }
      inChosen[l] = 0;
      chosen.pop();
      if (aborted) return;
    }
  };
  search(0);
  return { hosts: bestHosts, exact: !aborted };
}

/**
 * {@link solveCover} on a plain problem (arrays of replica indices): the entry point of tests and
 * of callers outside `Shards`.
 */
export function setCover(problem: CoverProblem, limits: CoverLimits = {}): CoverSolution {
  const { replicas, costs } = problem;
  const n = replicas.length;
  const keyStart = new Int32Array(n + 1);
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    keyStart[i] = pairs;
    pairs += replicas[i]!.length;
  }
  keyStart[n] = pairs;
  const keyHosts = new Int32Array(pairs);
  let r = 0;
  for (const reps of replicas) for (const l of reps) keyHosts[r++] = l;
  const seed = tieSeed(limits.random ?? Math.random);
  const h = costs.length;
  const rank = new Uint32Array(h);
  for (let l = 0; l < h; l++) rank[l] = tieRank(l, seed);
  const solution = solveCover(
    { n, keyStart, keyHosts, hostCount: h, cost: Float64Array.from(costs), rank },
    new CoverScratch(h, n, pairs),
    limits,
  );
  return { ...solution, assignment: Array.from(solution.assignment) };
}
