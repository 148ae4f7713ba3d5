import { randomBytes } from 'node:crypto';

const PREFIX = randomBytes(4).toString('hex');
let counter = 0;

/** A process-unique id: a random per-process prefix and a counter (cheaper than a UUID per message). */
export function nextId(): string {
  return `${PREFIX}${(++counter).toString(36)}`;
}
