/** What an autoscaling policy sees on every tick. */
export interface AutoscaleInput {
  /** Clock time (ms). */
  readonly now: number;
  /** Peak number of outstanding requests (running + waiting) over the window. */
  readonly peakConcurrency: number;
  /** Outstanding requests right now. */
  readonly outstanding: number;
  /** Requests waiting for a slot right now. */
  readonly waiting: number;
  /** Instances ready or starting. */
  readonly active: number;
  /** Per-instance concurrency limit (`maxConcurrentRequests`). */
  readonly maxConcurrentRequests: number;
  readonly minInstances: number;
  readonly maxInstances: number;
  readonly minIdleInstances: number;
  readonly maxIdleInstances: number;
  readonly scaleToZero: boolean;
}

/**
 * Bounds on the number of active instances: the scaler starts instances up to `atLeast` and
 * stops idle ones down to `atMost` (one at a time, `minMsBetweenQuits` apart). `required` is the
 * number of instances the load needs (the rest is idle headroom).
 */
export interface ScaleDecision {
  readonly atLeast: number;
  readonly atMost: number;
  readonly required: number;
  readonly reason: string;
}

/** A pluggable autoscaling algorithm. */
export interface AutoscalePolicy {
  readonly name: string;
  decide(input: AutoscaleInput): ScaleDecision;
}

/**
 * App Engine's automatic scaling (`AutoScalingModule`): `required = ceil(peak concurrency over
 * the window / maxConcurrentRequests)`, plus `minIdleInstances` of headroom, at most
 * `maxIdleInstances` of idle instances. Unlike devappserver, `maxIdleInstances` defaults to
 * `minIdleInstances` (so idle instances really go away), and with `scaleToZero` a version that
 * saw no request for a whole window goes down to `minInstances` (0 by default).
 */
export function gaePolicy(): AutoscalePolicy {
  return {
    name: 'gae',
    decide(input) {
      const per = Math.max(1, input.maxConcurrentRequests);
      const peak = Math.max(input.peakConcurrency, input.outstanding);
      const required = Math.ceil(peak / per);
      if (peak === 0 && input.scaleToZero) {
        return {
          atLeast: input.minInstances,
          atMost: input.minInstances,
          required: 0,
          reason: `no request during the window: scale to ${input.minInstances}`,
        };
      }
      const atLeast = clamp(
        required + input.minIdleInstances,
        input.minInstances,
        input.maxInstances,
      );
      const atMost = clamp(
        Math.max(required + input.maxIdleInstances, atLeast),
        input.minInstances,
        input.maxInstances,
      );
      return {
        atLeast,
        atMost,
        required,
        reason:
          `peak ${peak} outstanding / ${per} per instance = ${required} required, ` +
          `+${input.minIdleInstances}..${input.maxIdleInstances} idle`,
      };
    },
  };
}

function clamp(value: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, value));
}
