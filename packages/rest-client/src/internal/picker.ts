import type { HostPool } from './hostPool.js';

/** Chooses the host of the next try; `tried` holds the hosts already used by this call. */
export type Picker = (tried: readonly HostPool[] | undefined) => HostPool | undefined;
