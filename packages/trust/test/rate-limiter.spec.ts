import { describe, expect, it } from 'vitest';
import { createPolicy, RateLimiter } from '../src/index.ts';

describe('rate limiter - token bucket', () => {
  it('rate limiter - a burst, then one frame per refill interval', () => {
    const limiter = new RateLimiter({ count: 1, perMs: 1000, burst: 3 });
    expect([limiter.take('a', 0), limiter.take('a', 0), limiter.take('a', 0), limiter.take('a', 0)]).toEqual([true, true, true, false]);
    expect(limiter.take('a', 999)).toBe(false); // 0.999 tokens
    expect(limiter.take('a', 1000)).toBe(true); // refilled 1 token, minus the 0.999 wait: 1.000 − 1
    expect(limiter.tokens('a', 1000)).toBe(0);
    expect(limiter.tokens('a', 60_000)).toBe(3); // refills up to the burst, not beyond
  });

  it('rate limiter - senders have separate buckets', () => {
    const limiter = new RateLimiter({ count: 1, perMs: 1000 });
    expect(limiter.take('a', 0)).toBe(true);
    expect(limiter.take('a', 0)).toBe(false);
    expect(limiter.take('b', 0)).toBe(true);
  });

  it('rate limiter - a clock that steps back refills nothing', () => {
    const limiter = new RateLimiter({ count: 1, perMs: 1000 });
    limiter.take('a', 10_000);
    expect(limiter.take('a', 0)).toBe(false);
    expect(limiter.take('a', 10_999)).toBe(false);
    expect(limiter.take('a', 11_000)).toBe(true);
  });
});

describe('rate limiter - bounded memory', () => {
  it('rate limiter - 100,000 distinct senders never track more than maxSenders', () => {
    const limiter = new RateLimiter({ count: 5, perMs: 1000, maxSenders: 1000 });
    let largest = 0;
    for (let i = 0; i < 100_000; i++) {
      expect(limiter.take(`did:key:z${i}`, i)).toBe(true);
      largest = Math.max(largest, limiter.size);
    }
    expect(largest).toBe(1000);
  });

  it('rate limiter - the policy engine is bounded too, across its rate rules', () => {
    const policy = createPolicy({
      rules: { mesh: { rate: { count: 5, perMs: 1000 } }, types: { chat: { rate: { count: 1, perMs: 1000 } } } },
      maxTrackedSenders: 1000,
    });
    for (let i = 0; i < 100_000; i++) {
      const verdict = policy.check({ from: `did:key:z${i}`, typ: 'chat', size: 10, data: null, senderTier: 'standard', now: 0 });
      expect(verdict.ok).toBe(true);
    }
    expect(policy.trackedSenders).toBe(2000);
  });

  it('rate limiter - eviction drops an idle (full) bucket before a drained one', () => {
    const limiter = new RateLimiter({ count: 1, perMs: 1000, burst: 2, maxSenders: 4 });
    // D drains its bucket at t=500; A, B, C each take one token at t=600.
    limiter.take('D', 500);
    limiter.take('D', 500);
    for (const s of ['A', 'B', 'C']) limiter.take(s, 600);
    // At t=1600 A, B and C have refilled to 2 (idle), D has 1.1: D is the least recently seen,
    // but forgetting it would hand it a fresh burst, so A goes instead.
    limiter.take('E', 1600);
    expect(limiter.size).toBe(4);
    expect(limiter.tokens('D', 1600)).toBeCloseTo(1.1, 9);
    expect(limiter.tokens('A', 1600)).toBe(2); // untracked: a full burst, as before
    expect(limiter.take('D', 1600)).toBe(true);
    expect(limiter.take('D', 1600)).toBe(false);
  });
});
