import { describe, expect, it } from 'vitest';
import { fallback } from './fallback.js';
import { retry } from './retry.js';
import { pipeline } from './pipeline.js';
import { constantBackoff } from './backoff.js';
import { CircuitOpenError } from './errors.js';
import type { PolicyContext, PolicyEvent } from './policy.js';

describe('fallback', () => {
  it('answers with the fallback value, given the final error and the context', async () => {
    const boom = new Error('boom');
    let seen: { error: unknown; context: PolicyContext } | undefined;
    const policy = fallback((error, context) => {
      seen = { error, context };
      return 'cached';
    });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).resolves.toBe('cached');
    expect(seen!.error).toBe(boom);
    expect(seen!.context.attempt).toBe(0);
    expect(events).toEqual([{ type: 'fallback', error: boom }]);
  });

  it('passes successes through without calling the fallback', async () => {
    let called = false;
    const policy = fallback(() => {
      called = true;
      return 'fb';
    });
    await expect(policy.execute(() => 'real')).resolves.toBe('real');
    expect(called).toBe(false);
  });

  it('the when filter decides which errors fall back', async () => {
    const policy = fallback(() => 'fb', { when: e => e instanceof CircuitOpenError });
    await expect(policy.execute(() => Promise.reject(new CircuitOpenError('k', 1)))).resolves.toBe(
      'fb',
    );
    const other = new Error('other');
    await expect(policy.execute(() => Promise.reject(other))).rejects.toBe(other);
  });

  it('receives the final error after the retries inside it', async () => {
    let n = 0;
    const errors: unknown[] = [];
    const policy = pipeline(
      fallback(e => {
        errors.push(e);
        return 'fb';
      }),
      retry({ maxRetries: 2, backoff: constantBackoff(0) }),
    );
    await expect(
      policy.execute(() => {
        throw new Error(`try ${n++}`);
      }),
    ).resolves.toBe('fb');
    expect(n).toBe(3);
    expect(errors).toEqual([new Error('try 2')]);
  });

  it('a failing fallback rejects with its own error; an async fallback is awaited', async () => {
    const second = new Error('fallback failed too');
    await expect(
      fallback(() => {
        throw second;
      }).execute(() => Promise.reject(new Error('first'))),
    ).rejects.toBe(second);
    await expect(
      fallback(async () => 'later').execute(() => Promise.reject(new Error('x'))),
    ).resolves.toBe('later');
  });

  it('needs a function', () => {
    expect(() => fallback('nope' as never)).toThrow(TypeError);
  });
});
