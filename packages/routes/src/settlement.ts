import type { FailureReason, Outcome } from './outcome.js';

/** What a queue entrypoint does with a delivered message once its outcome is known. */
export type QueueSettlement =
  | { readonly action: 'ack' }
  | { readonly action: 'dead-letter'; readonly reason: FailureReason | 'max-deliveries' }
  | { readonly action: 'requeue'; readonly delayMs: number; readonly countDelivery: boolean };

/** Options of {@link queueSettlement}. */
export interface QueueSettlementOptions {
  /** Deliveries (not counting hand-backs) before a message that keeps coming back is dead-lettered. */
  readonly maxDeliveries: number;
  /** Delay before a non-terminal failure is delivered again. */
  readonly requeueDelayMs: number;
}

/**
 * The settlement table every queue entrypoint (in-memory, BullMQ) applies, so they cannot drift:
 *
 * | outcome | action |
 * |---|---|
 * | success | ack |
 * | deferred (async retry published) | ack the original |
 * | failure, terminal | dead-letter, then ack |
 * | failure, not terminal (overloaded, republish failed) | requeue after `requeueDelayMs`, counted |
 * | cancelled, started (killed at a drain deadline) | requeue at once, counted |
 * | cancelled, not started (handed back) | requeue at once, not counted |
 *
 * A counted requeue that reaches `maxDeliveries` dead-letters instead (`'max-deliveries'`): no
 * message loops forever.
 */
export function queueSettlement(
  outcome: Outcome,
  deliveries: number,
  options: QueueSettlementOptions,
): QueueSettlement {
  switch (outcome.kind) {
    case 'success':
    case 'deferred':
      return { action: 'ack' };
    case 'failure':
      if (outcome.terminal) return { action: 'dead-letter', reason: outcome.reason };
      return deliveries + 1 >= options.maxDeliveries
        ? { action: 'dead-letter', reason: 'max-deliveries' }
        : { action: 'requeue', delayMs: options.requeueDelayMs, countDelivery: true };
    case 'cancelled':
      if (!outcome.started) return { action: 'requeue', delayMs: 0, countDelivery: false };
      return deliveries + 1 >= options.maxDeliveries
        ? { action: 'dead-letter', reason: 'max-deliveries' }
        : { action: 'requeue', delayMs: 0, countDelivery: true };
  }
}
