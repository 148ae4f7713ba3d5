import { RouteConfigError } from './errors.js';
import { checkInt, checkKeys } from './internal/options.js';
import type { FailureReason, Meta, Outcome } from './outcome.js';

/** An error as a dead-letter record keeps it (JSON-safe, so it survives Redis). */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

/** A message that failed for good, with everything needed to inspect and replay it. */
export interface DeadLetterRecord {
  readonly id: string;
  readonly route: string;
  readonly entrypoint: string;
  /** The raw message as delivered (replayed as is). */
  readonly message: unknown;
  /** Its metadata at the last attempt. */
  readonly meta: Meta;
  readonly error: SerializedError;
  /** Why: the terminal failure's reason, or `'max-deliveries'` when redeliveries ran out. */
  readonly reason: FailureReason | 'max-deliveries';
  readonly attempts: number;
  /** Epoch ms. */
  readonly failedAt: number;
}

/** Where entrypoints put dead letters (a queue, a table, a file ...). */
export interface DeadLetterSink {
  put(record: DeadLetterRecord): void | Promise<void>;
}

/** Options of {@link MemoryDeadLetters}. */
export interface MemoryDeadLettersOptions {
  /** Records kept; the oldest are dropped beyond it (counted in `dropped`). Default 10 000. */
  readonly maxLength?: number;
}

/** A bounded in-memory {@link DeadLetterSink} with listing and removal (used by the in-memory queue). */
export class MemoryDeadLetters implements DeadLetterSink {
  readonly maxLength: number;
  /** Records dropped because the sink was full. */
  dropped = 0;
  private records: DeadLetterRecord[] = [];

  constructor(options: MemoryDeadLettersOptions = {}) {
    checkKeys(options, ['maxLength'], 'MemoryDeadLetters');
    this.maxLength = checkInt(options.maxLength ?? 10_000, 1, 'maxLength');
  }

  put(record: DeadLetterRecord): void {
    if (record === null || typeof record !== 'object')
      throw new RouteConfigError('dead letter must be a record');
    this.records.push(record);
    if (this.records.length > this.maxLength) {
      this.records.shift();
      this.dropped++;
    }
  }

  get size(): number {
    return this.records.length;
  }

  /** The records (oldest first) matching `filter`. */
  list(filter: (record: DeadLetterRecord) => boolean = () => true): DeadLetterRecord[] {
    return this.records.filter(filter);
  }

  /** Removes and returns the records matching `filter` (oldest first). */
  take(filter: (record: DeadLetterRecord) => boolean = () => true): DeadLetterRecord[] {
    const taken: DeadLetterRecord[] = [];
    const kept: DeadLetterRecord[] = [];
    for (const r of this.records) (filter(r) ? taken : kept).push(r);
    this.records = kept;
    return taken;
  }

  clear(): void {
    this.records = [];
  }
}

/** @internal Serialises an error for a record. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string'
      ? { name: error.name, message: error.message, code }
      : { name: error.name, message: error.message };
  }
  return { name: 'Error', message: String(error) };
}

/** @internal Builds a record from a terminal (or redelivery-exhausted) outcome. */
export function deadLetterRecord(
  init: { id: string; route: string; entrypoint: string; message: unknown; meta: Meta },
  outcome: Outcome,
  reason: FailureReason | 'max-deliveries',
): DeadLetterRecord {
  const error =
    outcome.kind === 'failure'
      ? outcome.error
      : outcome.kind === 'cancelled'
        ? outcome.reason
        : undefined;
  const meta =
    outcome.kind === 'failure' || outcome.kind === 'cancelled' ? outcome.meta : init.meta;
  return {
    ...init,
    meta,
    error: serializeError(error),
    reason,
    attempts: 'attempts' in outcome ? outcome.attempts : 0,
    failedAt: Date.now(),
  };
}

/** @internal Metadata for a replayed message: retry count reset, origin noted. */
export function replayMeta(record: DeadLetterRecord): Meta {
  const { backoff: _backoff, ...rest } = record.meta;
  return { ...rest, replayOf: record.id };
}
