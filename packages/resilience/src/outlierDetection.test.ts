import { describe, expect, it } from 'vitest';
import { constantBackoff } from './backoff.js';
import { outlierDetection, type OutlierState } from './outlierDetection.js';

function endpoint(): OutlierState {
  return { consecutiveFailures: 0, ejections: 0, ejectedAt: 0, ejectedUntil: 0, readmittedAt: 0 };
}

describe('outlierDetection', () => {
  it('ejects after the failure streak, for a time that doubles with each ejection in a row', () => {
    const detector = outlierDetection({
      consecutiveFailures: 3,
      baseEjectionMs: 1_000,
      maxEjectionMs: 5_000,
    });
    const a = endpoint();
    const others = [endpoint(), endpoint(), endpoint()];
    a.consecutiveFailures = 2;
    expect(detector.shouldEject(a, 4)).toBe(false);
    a.consecutiveFailures = 3;
    expect(detector.shouldEject(a, 4)).toBe(true);
    expect(detector.eject(a, 100)).toBe(1_000);
    expect(a).toMatchObject({ ejections: 1, ejectedAt: 100, ejectedUntil: 1_100 });
    expect(detector.isEjected(a)).toBe(true);
    expect(detector.shouldEject(a, 4)).toBe(false); // already out
    // The probe fails: ejected again, for longer, up to the maximum.
    expect(detector.eject(a, 1_100)).toBe(2_000);
    expect(detector.eject(a, 3_100)).toBe(4_000);
    expect(detector.eject(a, 7_100)).toBe(5_000);
    expect(detector.ejectedCount).toBe(1);
    detector.readmit(a, 12_100);
    expect(a).toMatchObject({ consecutiveFailures: 0, readmittedAt: 12_100, ejections: 4 });
    expect(detector.isEjected(a)).toBe(false);
    // A healthy period of maxEjectionMs restarts the growth.
    detector.succeeded(a, 13_000);
    expect(a.ejections).toBe(4);
    detector.succeeded(a, 17_100);
    expect(a.ejections).toBe(0);
    a.consecutiveFailures = 3;
    expect(detector.eject(a, 20_000)).toBe(1_000);
    expect(others.every(o => !detector.isEjected(o))).toBe(true);
  });

  it('restarts the growth on ejection too after a long healthy period', () => {
    const detector = outlierDetection({ baseEjectionMs: 10, maxEjectionMs: 100 });
    const a = endpoint();
    detector.eject(a, 0);
    detector.eject(a, 10);
    detector.readmit(a, 30);
    expect(detector.eject(a, 40)).toBe(40); // third in a row
    detector.readmit(a, 80);
    expect(detector.eject(a, 180)).toBe(10); // 100 ms healthy: the row restarts
  });

  it('caps the ejected share: at least one, never the last', () => {
    const detector = outlierDetection({ consecutiveFailures: 1, maxEjectedPercent: 50 });
    expect([1, 2, 3, 4, 5].map(n => detector.cap(n))).toEqual([0, 1, 1, 2, 2]);
    expect(outlierDetection({ maxEjectedPercent: 100 }).cap(3)).toBe(2);
    expect(outlierDetection({ maxEjectedPercent: 0 }).cap(10)).toBe(0);
    const list = [endpoint(), endpoint(), endpoint(), endpoint()];
    for (const e of list) e.consecutiveFailures = 1;
    expect(detector.shouldEject(list[0]!, 4)).toBe(true);
    detector.eject(list[0]!, 0);
    detector.eject(list[1]!, 0);
    expect(detector.shouldEject(list[2]!, 4)).toBe(false);
    detector.forget(list[0]!);
    expect(detector.ejectedCount).toBe(1);
    expect(detector.shouldEject(list[2]!, 3)).toBe(false); // 1 of 3 already out
    expect(detector.shouldEject(list[2]!, 4)).toBe(true);
  });

  it('takes any @x/resilience backoff for the ejection time', () => {
    const detector = outlierDetection({
      backoff: constantBackoff(250),
      baseEjectionMs: 250,
      maxEjectionMs: 1_000,
    });
    const a = endpoint();
    expect([detector.eject(a, 0), detector.eject(a, 0), detector.eject(a, 0)]).toEqual([
      250, 250, 250,
    ]);
  });

  it('rejects bad options with the field, what was expected and what was received', () => {
    expect(() => outlierDetection({ consecutiveFailures: 0 })).toThrow(
      /consecutiveFailures must be an integer >= 1, got 0/,
    );
    expect(() => outlierDetection({ maxEjectedPercent: 101 })).toThrow(
      /maxEjectedPercent must be a number in \[0, 100\], got 101/,
    );
    expect(() => outlierDetection({ baseEjectionMs: -1 })).toThrow(/baseEjectionMs/);
    expect(() => outlierDetection({ baseEjectionMs: 100, maxEjectionMs: 50 })).toThrow(
      /maxEjectionMs/,
    );
    expect(() => outlierDetection({ consecutiveFailures: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'consecutiveFailures' }),
    );
  });
});
