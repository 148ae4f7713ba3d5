import { randomUUID } from 'node:crypto';

// Request ids: a random per-process prefix and a counter (unique, cheap; not secret).
const ID_PREFIX = randomUUID().slice(0, 24); // "xxxxxxxx-xxxx-4xxx-yxxx-": ids keep the UUID shape
let idCounter = 0;

/** A new request id in the UUID shape (a per-process prefix and a counter). */
export function nextRequestId(): string {
  return `${ID_PREFIX}${(++idCounter).toString(16).padStart(12, '0')}`;
}
