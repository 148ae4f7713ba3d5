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

  it('100 hosts x 1 000 keys (3 replicas each) answers in under 50 ms with a valid cover', () => {
    let state = 42;
    const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
    const replicas = Array.from({ length: 1000 }, () => {
      const set = new Set<number>();
      while (set.size < 3) set.add(Math.floor(random() * 100));
      return [...set];
    });
    const costs = Array.from({ length: 100 }, () => Math.floor(random() * 10));
    setCover({ replicas: replicas.slice(0, 50), costs }); // warm up the JIT
    // Best of three: a GC pause or another process can land in one run on a shared machine.
    let cpuMs = Infinity;
    let elapsed = Infinity;
    let solution = setCover({ replicas, costs }, { random });
    for (let run = 0; run < 3; run++) {
      const started = performance.now();
      const cpu = process.cpuUsage();
      solution = setCover({ replicas, costs }, { random });
      const used = process.cpuUsage(cpu);
      cpuMs = Math.min(cpuMs, (used.user + used.system) / 1000);
      elapsed = Math.min(elapsed, performance.now() - started);
    }
    // CPU time is the algorithm's cost; wall time also counts other processes on a shared machine.
    expect(cpuMs).toBeLessThan(50);
    expect(elapsed).toBeLessThan(200);
    const chosen = new Set(solution.hosts);
    expect(
      replicas.every(
        (r, k) => chosen.has(solution.assignment[k]!) && r.includes(solution.assignment[k]!),
      ),
    ).toBe(true);
    expect(solution.hosts.length).toBeLessThanOrEqual(70); // greedy is ln(n)-approximate; on random triples it stays near 65
  });

  it('an empty key list needs no host', () => {
    expect(setCover({ replicas: [], costs: [1, 2] })).toEqual({
      hosts: [],
      assignment: [],
      exact: true,
    });
  });
});
