import { describe, expect, it } from 'vitest';
import { EventLog } from './eventLog.js';

describe('EventLog', () => {
  it('keeps the last events in order and tells subscribers until they leave', () => {
    const log = new EventLog(3);
    const seen: string[] = [];
    const stop = log.subscribe(e => seen.push(e.message));
    for (const m of ['a', 'b', 'c', 'd']) log.add('test', 'info', m);
    stop();
    log.add('test', 'warn', 'e');
    expect(log.recent().map(e => e.message)).toEqual(['c', 'd', 'e']);
    expect(log.recent(1)[0]).toMatchObject({ seq: 5, level: 'warn', source: 'test' });
    expect(seen).toEqual(['a', 'b', 'c', 'd']);
  });
});
