import { describe, expect, it } from 'vitest';
import { waitFor } from './waitFor.js';

describe('waitFor', () => {
  it('returns the first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : null), { intervalMs: 1 });
    expect(value).toEqual({ calls: 3 });
  });

  it('awaits async checks and treats throws as not yet', async () => {
    let calls = 0;
    const value = await waitFor(
      async () => {
        calls++;
        if (calls < 3) throw new Error('not yet');
        return 'done';
      },
      { intervalMs: 1 },
    );
    expect(value).toBe('done');
  });

  it('rejects after the timeout with the message and the last error', async () => {
    const started = performance.now();
    const failure = await waitFor(
      () => {
        throw new Error('still down');
      },
      { timeoutMs: 60, intervalMs: 5, message: 'service up' },
    ).catch((err: unknown) => err);
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(
      /timed out after 60ms.*: service up \(last error: still down\)/,
    );
    expect((failure as Error).cause).toMatchObject({ message: 'still down' });
  });

  it('rejects when the check stays falsy', async () => {
    await expect(waitFor(() => 0, { timeoutMs: 30 })).rejects.toThrow(
      /waitFor timed out after 30ms/,
    );
  });
});
