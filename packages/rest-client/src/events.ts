import type { RestClientError } from './errors.js';

/** Events of a client, discriminated by `type`; subscribe with `on(type, listener)` or `onEvent(listener)`. */
export type RestClientEvent =
  | {
      /** A host was ejected by passive health checking. */
      readonly type: 'eject';
      readonly host: string;
      /** Consecutive failures that triggered it. */
      readonly consecutiveFailures: number;
      /** How long it stays out before a probe. */
      readonly ejectionMs: number;
      /** Ejections of this host in a row (the ejection time grows with it). */
      readonly ejections: number;
      readonly error: RestClientError | undefined;
    }
  | {
      /** An ejected host answered its probe and is eligible again. */
      readonly type: 'readmit';
      readonly host: string;
      /** `probe`: the configured health request; `request`: the first real request after the ejection. */
      readonly via: 'probe' | 'request';
      /** How long it was out. */
      readonly ejectedMs: number;
    }
  | {
      /** A probe failed; the host stays ejected for longer. */
      readonly type: 'probeFailed';
      readonly host: string;
      readonly error: RestClientError | undefined;
    }
  | {
      /** A failed try is retried (on `to`, a different host when one is eligible). */
      readonly type: 'retry';
      readonly host: string;
      readonly to: string;
      /** 1 for the first retry. */
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: RestClientError;
    }
  | {
      /** A try that hit a stale keep-alive connection (or a 408) is replayed at once. */
      readonly type: 'replay';
      readonly host: string;
      readonly method: string;
      readonly path: string;
      readonly error: RestClientError | undefined;
      readonly status: number | undefined;
    }
  | {
      /** A hedged (backup) try started on `host` because the first one was slow. */
      readonly type: 'hedge';
      readonly host: string;
      readonly attempt: number;
    };

/** The `type` of a {@link RestClientEvent}. */
export type RestClientEventType = RestClientEvent['type'];

/** The event of a given type. */
export type RestClientEventOf<K extends RestClientEventType> = Extract<
  RestClientEvent,
  { readonly type: K }
>;
