import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { setCover } from './setCover.js';

function bruteForce(replicas: number[][], costs: number[]): [number, number] {
  const h = costs.length;
  let best: [number, number] = [Infinity, Infinity];
  for (let mask = 1; mask < 1 << h; mask++) {
    if (!replicas.every(r => r.some(host => (mask >> host) & 1))) continue;
    let count = 0;
    let sum = 0;
    for (let i = 0; i < h; i++)
      if ((mask >> i) & 1) {
        count++;
        sum += costs[i]!;
      }
    if (count < best[0] || (count === best[0] && sum < best[1])) best = [count, sum];
  }
  return best;
}

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
}

/** Every key assigned to one of its replicas, which is among the chosen hosts (no duplicates). */
function isValid(
  replicas: number[][],
  solution: { hosts: number[]; assignment: number[] },
): boolean {
  const chosen = new Set(solution.hosts);
  return (
    chosen.size === solution.hosts.length &&
    solution.assignment.length === replicas.length &&
    replicas.every(
      (r, k) => r.includes(solution.assignment[k]!) && chosen.has(solution.assignment[k]!),
    )
  );
}

/** Chosen hosts whose every key another chosen host also serves. */
function redundant(replicas: number[][], hosts: number[]): number[] {
  return hosts.filter(host =>
    replicas.every(
      r => !r.includes(host) || r.some(other => other !== host && hosts.includes(other)),
    ),
  );
}

/** Up to `maxHosts` hosts, up to `maxKeys` keys each on a non-empty set of them, costs in -3..5. */
function smallProblem(maxHosts: number, maxKeys: number) {
  return fc
    .integer({ min: 1, max: maxHosts })
    .chain(h =>
      fc.tuple(
        fc.array(
          fc.uniqueArray(fc.integer({ min: 0, max: h - 1 }), { minLength: 1, maxLength: h }),
          { minLength: 1, maxLength: maxKeys },
        ),
        fc.array(fc.integer({ min: -3, max: 5 }), { minLength: h, maxLength: h }),
      ),
    );
}

describe('setCover', () => {
  it("lupyne's example: keys 0:{h0,h1} 1:{h0,h2} 2:{h1,h2}", () => {
    const replicas = [
      [0, 1],
      [0, 2],
      [1, 2],
    ];
    expect(setCover({ replicas: [replicas[0]!], costs: [0, 0, 0] }).hosts).toHaveLength(1);
    expect(setCover({ replicas: [replicas[0]!, replicas[1]!], costs: [0, 0, 0] }).hosts).toEqual([
      0,
    ]);
    const all = setCover({ replicas, costs: [0, 0, 0] });
    expect(all.hosts).toHaveLength(2);
    expect(all.exact).toBe(true);
    // A loaded h0 loses the tie: {h1, h2}.
    expect(setCover({ replicas, costs: [5, 0, 0] }).hosts.sort()).toEqual([1, 2]);
  });

  it('assigns every key to a chosen replica, the cheapest one', () => {
    const solution = setCover({ replicas: [[0, 1], [1], [0, 1]], costs: [3, 1] });
    expect(solution.hosts).toEqual([1]);
    expect(solution.assignment).toEqual([1, 1, 1]);
  });

  it('property: exact on small inputs (matches brute force), every key covered', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 8 })
          .chain(h =>
            fc.tuple(
              fc.array(
                fc.uniqueArray(fc.integer({ min: 0, max: h - 1 }), { minLength: 1, maxLength: h }),
                { minLength: 1, maxLength: 12 },
              ),
              fc.array(fc.integer({ min: -3, max: 5 }), { minLength: h, maxLength: h }),
            ),
          ),
        fc.integer(),
        ([replicas, costs], seed) => {
          let state = seed >>> 0;
          const random = () =>
            (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
          const solution = setCover({ replicas, costs }, { random });
          const chosen = new Set(solution.hosts);
          const [count, sum] = bruteForce(replicas, costs);
          return (
            solution.exact &&
            replicas.every(
              (r, k) => r.includes(solution.assignment[k]!) && chosen.has(solution.assignment[k]!),
            ) &&
            solution.hosts.length === count &&
            solution.hosts.reduce((s, i) => s + costs[i]!, 0) === sum
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  it('100 hosts x 1 000 keys (3 replicas each): a valid greedy cover, no redundant host', () => {
    // Time is measured in bench/cover.mjs, not asserted here.
    let state = 42;
    const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
    const replicas = Array.from({ length: 1000 }, () => {
      const set = new Set<number>();
      while (set.size < 3) set.add(Math.floor(random() * 100));
      return [...set];
    });
    const costs = Array.from({ length: 100 }, () => Math.floor(random() * 10));
    const solution = setCover({ replicas, costs }, { random });
    expect(isValid(replicas, solution)).toBe(true);
    expect(redundant(replicas, solution.hosts)).toEqual([]);
    expect(solution.exact).toBe(false);
    expect(solution.hosts.length).toBeLessThanOrEqual(70); // greedy is ln(n)-approximate; on random triples it stays near 65
    const exact = setCover({ replicas, costs }, { random, mode: 'exact', maxNodes: 2_000 });
    expect(isValid(replicas, exact)).toBe(true);
    expect(exact.hosts.length).toBeLessThanOrEqual(solution.hosts.length + 2); // seeded with its own greedy (other ties)
  });

  it("property: greedy (mode 'greedy') is valid and within H(max keys per host) of the minimum", () => {
    fc.assert(
      fc.property(smallProblem(10, 16), fc.integer(), ([replicas, costs], seed) => {
        const solution = setCover({ replicas, costs }, { random: lcg(seed), mode: 'greedy' });
        const [count] = bruteForce(replicas, costs);
        let maxKeys = 1;
        for (let host = 0; host < costs.length; host++)
          maxKeys = Math.max(maxKeys, replicas.filter(r => r.includes(host)).length);
        let harmonic = 0;
        for (let i = 1; i <= maxKeys; i++) harmonic += 1 / i;
        return (
          isValid(replicas, solution) &&
          redundant(replicas, solution.hosts).length === 0 &&
          solution.hosts.length >= count &&
          solution.hosts.length <= count * harmonic + 1e-9 &&
          (!solution.exact || solution.hosts.length === count)
        );
      }),
      { numRuns: 300 },
    );
  });

  it("property: mode 'auto' is exact up to 16 hosts and never larger than the greedy cover", () => {
    fc.assert(
      fc.property(smallProblem(16, 24), fc.integer(), ([replicas, costs], seed) => {
        const auto = setCover({ replicas, costs }, { random: lcg(seed) });
        const greedy = setCover({ replicas, costs }, { random: lcg(seed), mode: 'greedy' });
        const [count, sum] = costs.length <= 12 ? bruteForce(replicas, costs) : [NaN, NaN];
        return (
          isValid(replicas, auto) &&
          auto.hosts.length <= greedy.hosts.length &&
          (costs.length > 12 ||
            !auto.exact ||
            (auto.hosts.length === count && auto.hosts.reduce((s, i) => s + costs[i]!, 0) === sum))
        );
      }),
      { numRuns: 300 },
    );
  });

  it("mode 'exact' beyond the bitmask search (40 hosts) finds a planted optimum and says so", () => {
    // 4 hosts cover 8 keys each; 36 decoys cover 2 to 3 keys each: the minimum is the 4 planted.
    let state = 7;
    const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
    const replicas: number[][] = Array.from({ length: 32 }, (_, k) => [k >> 3]);
    for (let decoy = 4; decoy < 40; decoy++) {
      const keys = new Set<number>();
      while (keys.size < 2 + (decoy % 2)) keys.add(Math.floor(random() * 32));
      for (const k of keys) replicas[k]!.push(decoy);
    }
    const costs = Array.from({ length: 40 }, (_, h) => (h < 4 ? 5 : 0));
    const exact = setCover({ replicas, costs }, { random, mode: 'exact' });
    expect(exact.exact).toBe(true);
    expect([...exact.hosts].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    expect(isValid(replicas, exact)).toBe(true);
  });

  it("mode 'exact' stops at its node bound, keeping a valid cover no larger than greedy", () => {
    let state = 3;
    const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
    const replicas = Array.from({ length: 400 }, () => {
      const set = new Set<number>();
      while (set.size < 3) set.add(Math.floor(random() * 60));
      return [...set];
    });
    const costs = new Array<number>(60).fill(0);
    const greedy = setCover({ replicas, costs }, { random: lcg(1), mode: 'greedy' });
    const bounded = setCover({ replicas, costs }, { random: lcg(1), mode: 'exact', maxNodes: 50 });
    expect(bounded.exact).toBe(false);
    expect(isValid(replicas, bounded)).toBe(true);
    expect(bounded.hosts.length).toBeLessThanOrEqual(greedy.hosts.length);
    // A clock already past the deadline stops it too.
    let t = 0;
    const timed = setCover(
      { replicas, costs },
      { random: lcg(1), mode: 'exact', maxMs: 5, now: () => (t += 10) },
    );
    expect(timed.exact).toBe(false);
    expect(isValid(replicas, timed)).toBe(true);
  });

  it('an empty key list needs no host', () => {
    expect(setCover({ replicas: [], costs: [1, 2] })).toEqual({
      hosts: [],
      assignment: [],
      exact: true,
    });
  });
});
