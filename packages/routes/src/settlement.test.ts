import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Outcome } from './outcome.js';
import { queueSettlement } from './settlement.js';

const meta = {};
const options = { maxDeliveries: 3, requeueDelayMs: 100 };

describe('queueSettlement', () => {
  it('settles each outcome as the table says', () => {
    const table: Array<[Outcome, ReturnType<typeof queueSettlement>]> = [
      [{ kind: 'success', value: 1, attempts: 1 }, { action: 'ack' }],
      [
        { kind: 'deferred', retryAt: 1, delayMs: 1, attempt: 1, via: 'q', error: null },
        { action: 'ack' },
      ],
      [
        { kind: 'failure', error: null, terminal: true, reason: 'translation', attempts: 1, meta },
        { action: 'dead-letter', reason: 'translation' },
      ],
      [
        { kind: 'failure', error: null, terminal: false, reason: 'overloaded', attempts: 0, meta },
        { action: 'requeue', delayMs: 100, countDelivery: true },
      ],
      [
        { kind: 'cancelled', reason: null, started: true, attempts: 1, meta },
        { action: 'requeue', delayMs: 0, countDelivery: true },
      ],
      [
        { kind: 'cancelled', reason: null, started: false, attempts: 0, meta },
        { action: 'requeue', delayMs: 0, countDelivery: false },
      ],
    ];
    for (const [outcome, expected] of table)
      expect(queueSettlement(outcome, 0, options)).toEqual(expected);
    expect(
      queueSettlement(
        { kind: 'failure', error: null, terminal: false, reason: 'overloaded', attempts: 0, meta },
        2,
        options,
      ),
    ).toEqual({
      action: 'dead-letter',
      reason: 'max-deliveries',
    });
  });

  it('property: a message is never redelivered forever, nor dropped without a dead letter', () => {
    const outcome = fc.constantFrom<Outcome>(
      {
        kind: 'failure',
        error: null,
        terminal: false,
        reason: 'republish-failed',
        attempts: 1,
        meta,
      },
      { kind: 'cancelled', reason: null, started: true, attempts: 1, meta },
      { kind: 'cancelled', reason: null, started: false, attempts: 0, meta },
    );
    fc.assert(
      fc.property(
        fc.array(outcome, { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 1, max: 10 }),
        (outcomes, maxDeliveries) => {
          let deliveries = 0;
          for (const o of outcomes) {
            const d = queueSettlement(o, deliveries, { maxDeliveries, requeueDelayMs: 0 });
            if (d.action === 'dead-letter') {
              expect(d.reason).toBe('max-deliveries');
              expect(deliveries + 1).toBe(maxDeliveries);
              return;
            }
            expect(d.action).toBe('requeue');
            if (d.action === 'requeue' && d.countDelivery) deliveries++;
            expect(deliveries).toBeLessThan(maxDeliveries);
          }
        },
      ),
    );
  });
});
