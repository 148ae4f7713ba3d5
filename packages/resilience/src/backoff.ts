import { duration } from './duration.js';
import {
  ConstantBackoff,
  DelegateBackoff,
  ExponentialBackoff,
  decorrelatedJitterGenerator,
  type GeneratorFn,
  type IBackoffFactory,
} from 'cockatiel';

export {
  ConstantBackoff,
  DelegateBackoff,
  ExponentialBackoff,
  IterableBackoff,
  decorrelatedJitterGenerator,
  fullJitterGenerator,
  halfJitterGenerator,
  noJitterGenerator,
  type IBackoff,
  type IBackoffFactory,
} from 'cockatiel';

/** What a retry backoff is told about the retry it is computing a delay for. */
export interface BackoffContext {
  /** 1 for the first retry. */
  readonly attempt: number;
  /** The failure being retried. */
  readonly error: unknown;
}

/** A backoff usable by every `@x` retry: any cockatiel backoff factory fits. */
export type Backoff = IBackoffFactory<BackoffContext>;

/** Jitter applied to an exponential backoff. */
export type Jitter = 'none' | 'full' | 'half' | 'decorrelated';

/** Options of {@link exponentialBackoff}. */
export interface ExponentialBackoffOptions {
  /** First delay. Default 100 ms. */
  readonly initialMs?: number;
  /** Largest delay. Default 10 000 ms. */
  readonly maxMs?: number;
  /** Growth factor. Default 2. */
  readonly exponent?: number;
  /** Jitter. Default `'decorrelated'` (Polly's DecorrelatedJitterV2, cockatiel's default). */
  readonly jitter?: Jitter;
  /** Random source in [0, 1) for the jitter; default `Math.random`. */
  readonly random?: () => number;
}

/**
 * Exponential backoff on cockatiel's `ExponentialBackoff`. With `random` given, the jitter uses it
 * (full, half and none are then exactly reproducible in tests). None, full and half use our own
 * generator because cockatiel's ignore `exponent` (they always grow by 2).
 */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): Backoff {
  const { exponent = 2, jitter = 'decorrelated', random } = options;
  const initialMs = duration(options.initialMs ?? 100, 'initialMs', { allowInfinity: false });
  const maxMs = duration(options.maxMs ?? 10_000, 'maxMs', { min: initialMs });
  if (!(exponent >= 1)) {
    throw new RangeError(
      `invalid exponential backoff: initialMs ${initialMs}, maxMs ${maxMs}, exponent ${exponent}`,
    );
  }
  const generator: GeneratorFn<any> =
    jitter === 'decorrelated'
      ? decorrelatedJitterGenerator
      : seededGenerator(jitter, random ?? Math.random);
  return new ExponentialBackoff({ initialDelay: initialMs, maxDelay: maxMs, exponent, generator });
}

function seededGenerator(
  jitter: Exclude<Jitter, 'decorrelated'>,
  random: () => number,
): GeneratorFn<number> {
  return (attempt = 0, { initialDelay, exponent, maxDelay }) => {
    const base = Math.min(maxDelay, initialDelay * exponent ** attempt);
    const delay =
      jitter === 'none'
        ? base
        : jitter === 'full'
          ? base * random()
          : base / 2 + (base / 2) * random();
    return [delay, attempt + 1];
  };
}

/** A fixed delay between retries. */
export function constantBackoff(ms: number): Backoff {
  return new ConstantBackoff(duration(ms, 'delay', { allowInfinity: false }));
}

/** `initialMs`, then `stepMs` more on every retry, at most `maxMs`. */
export function linearBackoff(options: {
  initialMs: number;
  stepMs: number;
  maxMs?: number;
}): Backoff {
  const initialMs = duration(options.initialMs, 'initialMs', { allowInfinity: false });
  const stepMs = duration(options.stepMs, 'stepMs', { allowInfinity: false });
  const maxMs = duration(options.maxMs ?? Infinity, 'maxMs', { min: initialMs });
  return new DelegateBackoff<BackoffContext>(context =>
    Math.min(maxMs, initialMs + stepMs * (context.attempt - 1)),
  );
}
