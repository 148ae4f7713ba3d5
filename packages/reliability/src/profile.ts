/**
 * The suite's size. `quick` (the default, what CI runs) keeps the whole suite under five minutes;
 * `long` (`RELIABILITY_PROFILE=long`, run by `pnpm reliability:long`) runs the full figures the
 * issue states: one million soak calls, 30-second load phases, and so on.
 */
export type Profile = 'quick' | 'long';

/** The profile of this run, from `RELIABILITY_PROFILE` (default `quick`). */
export const PROFILE: Profile = process.env.RELIABILITY_PROFILE === 'long' ? 'long' : 'quick';

/** Picks the value for the current {@link PROFILE}. */
export function sized<T>(sizes: { quick: T; long: T }): T {
  return sizes[PROFILE];
}
