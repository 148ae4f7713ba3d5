import { pino, type Logger as Pino } from 'pino';
import type { LogLevel } from './config.js';

/**
 * Structured JSON logs on stdout (pino). Each request logs through a child logger carrying its
 * `reqId`, which is also the `X-Request-Id` response header and is forwarded to the backends.
 * The `@x` packages take this logger as is (their `logger` option is pino-compatible).
 */
export function createLogger(level: LogLevel): Pino {
  return pino({ level, base: { service: 'x-gateway' }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Pino };
