import { describe, expect, it } from 'vitest';
import { secretMatches } from './secretMatches.js';

describe('secretMatches', () => {
  it('matches equal secrets as strings or bytes, and nothing else', () => {
    expect(secretMatches('s3cret-token', 's3cret-token')).toBe(true);
    expect(secretMatches(Buffer.from('s3cret-token'), 's3cret-token')).toBe(true);
    expect(secretMatches('s3cret-tokeN', 's3cret-token')).toBe(false);
    expect(secretMatches('s3cret', 's3cret-token')).toBe(false);
    expect(secretMatches('', 's3cret-token')).toBe(false);
    expect(secretMatches(undefined, 's3cret-token')).toBe(false);
  });
});
