import { InvalidArgumentError } from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import { createScorer, loadScoringPolicy, PENALTY_EVENT_NAMES, parseTrustState, type TrustState } from '../src/index.ts';

// The default policy's numbers, restated here so every expectation below is hand arithmetic
// (packages/broker/policy/default-policy.json).
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const HALF_ABOVE = 7 * DAY;
const HALF_BELOW = 14 * DAY;
const MEMORY = 30 * DAY;
// An hour boundary (472,222 × 3,600,000), so reward windows start here.
const T0 = 1_699_999_200_000;
const X = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';

const scorer = createScorer();
const fresh = (): TrustState => scorer.newState(X, T0);
const withScore = (score: number): TrustState => ({ ...fresh(), score });

/** Applies events one after the other at one instant (no decay in between). */
function applyAll(state: TrustState, events: Parameters<typeof scorer.applyEvidence>[1][], now = T0) {
  const results = [];
  for (const event of events) {
    const result = scorer.applyEvidence(state, event, now);
    results.push(result);
    state = result.state;
  }
  return { state, results };
}

describe('scoring - new agents', () => {
  it('scoring - a new DID starts at the baseline 500, standard, version 0', () => {
    const state = fresh();
    expect(state.score).toBe(500);
    expect(state.version).toBe(0);
    expect(scorer.currentScore(state, T0)).toBe(500);
    expect(scorer.tier(state, T0)).toBe('standard');
    expect(scorer.nextTierChange(state, T0)).toBeUndefined();
  });
});

describe('scoring - penalties', () => {
  // First offence of each event from 500: 500 − delta.
  const firstOffence: [string, number][] = [
    ['sent_while_killed', 500 - 100],
    ['policy_violation', 500 - 30],
    ['equivocation', 500 - 150],
    ['scope_escalation', 500 - 100],
    ['protocol_violation', 500 - 50],
    ['task_failed', 500 - 5],
    ['task_timeout', 500 - 5],
    ['bad_signature_authenticated', 500 - 20],
    ['replay_authenticated', 500 - 20],
    ['expiry_extended', 500 - 50],
    ['depth_exceeded', 500 - 50],
  ];
  it('scoring - every penalty event is covered by this table', () => {
    expect(firstOffence.map(([event]) => event).sort()).toEqual([...PENALTY_EVENT_NAMES].sort());
  });
  for (const [event, expected] of firstOffence) {
    it(`scoring - ${event} takes a new agent from 500 to ${expected}`, () => {
      const result = scorer.applyEvidence(fresh(), { event: event as never, ref: 'audit:42' }, T0);
      expect(result.outcome).toBe('applied');
      expect(result.changed).toBe(true);
      expect(result.reason).toBe(event);
      expect(result.delta).toBe(expected - 500);
      expect(result.repetition).toBe(1);
      expect(result.state.score).toBe(expected);
      expect(result.state.version).toBe(1);
      expect(result.state.last).toEqual({ event, delta: expected - 500, at: T0, ref: 'audit:42' });
      expect(result.before).toEqual({ score: 500, tier: 'standard' });
      expect(result.after.score).toBe(expected);
    });
  }

  it('scoring - repeated offences grow: delta × growth^(n−1)', () => {
    // policy_violation: delta 30, growth 1.5 → 30, 45, 67.5
    const { state, results } = applyAll(fresh(), ['policy_violation', 'policy_violation', 'policy_violation']);
    expect(results.map((r) => r.delta)).toEqual([-30, -45, -67.5]);
    expect(results.map((r) => r.repetition)).toEqual([1, 2, 3]);
    expect(state.score).toBe(500 - 30 - 45 - 67.5); // 357.5
    expect(scorer.currentScore(state, T0)).toBe(358); // rounded half up, for enforcement only
    expect(state.version).toBe(3);
  });

  it('scoring - repetition is counted per event code', () => {
    // policy_violation then task_failed: both first offences: 500 − 30 − 5
    const { state, results } = applyAll(fresh(), ['policy_violation', 'task_failed']);
    expect(results.map((r) => r.repetition)).toEqual([1, 1]);
    expect(state.score).toBe(465);
  });

  it('scoring - one offence never takes more than the event max', () => {
    const policy = loadScoringPolicy({ penalties: { events: { task_failed: { delta: 10, growth: 2, max: 25 } } } });
    const custom = createScorer(policy);
    let state = custom.newState(X, T0);
    const deltas: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = custom.applyEvidence(state, 'task_failed', T0);
      deltas.push(r.delta);
      state = r.state;
    }
    // 10, 20, min(25, 40) = 25, min(25, 80) = 25
    expect(deltas).toEqual([-10, -20, -25, -25]);
    expect(state.score).toBe(500 - 10 - 20 - 25 - 25);
  });

  it('scoring - scores are clamped at 0, and delta reports the change actually made', () => {
    // equivocation: 150, 300, 600 (= max): 500 → 350 → 50 → max(0, 50 − 600) = 0
    const { state, results } = applyAll(fresh(), ['equivocation', 'equivocation', 'equivocation']);
    expect(results.map((r) => r.delta)).toEqual([-150, -300, -50]);
    expect(state.score).toBe(0);
    expect(scorer.tier(state, T0)).toBe('untrusted');
  });

  it('scoring - offences older than the memory horizon no longer count as repetitions', () => {
    const first = scorer.applyEvidence(fresh(), 'policy_violation', T0).state; // 470
    const later = T0 + MEMORY + 1;
    const second = scorer.applyEvidence(first, 'policy_violation', later);
    expect(second.repetition).toBe(1);
    // 470 decays toward 500 with the below-baseline half-life, then the first-offence penalty 30.
    const decayedBefore = 500 - 30 * 2 ** (-(MEMORY + 1) / HALF_BELOW);
    expect(second.state.score).toBeCloseTo(decayedBefore - 30, 9);
    expect(second.state.offences.policy_violation).toEqual([later]);
  });

  it('scoring - negative history per DID is bounded by maxRemembered', () => {
    let state = fresh();
    for (let i = 0; i < 100; i++) state = scorer.applyEvidence(state, 'task_timeout', T0 + i).state;
    expect(state.offences.task_timeout).toHaveLength(16);
    expect(state.offences.task_timeout?.[15]).toBe(T0 + 99);
    expect(state.counts.task_timeout).toBe(100);
  });
});

describe('scoring - ladder', () => {
  it('scoring - 4 policy violations take a new agent from 500 below the refuse line 300; 3 do not', () => {
    // 30 + 45 + 67.5 = 142.5 → 357.5 (probationary); + 101.25 → 256.25 (untrusted)
    const three = applyAll(fresh(), Array(3).fill('policy_violation')).state;
    expect(three.score).toBe(500 - 30 - 45 - 67.5);
    expect(scorer.tier(three, T0)).toBe('probationary');
    const four = scorer.applyEvidence(three, 'policy_violation', T0);
    expect(four.state.score).toBe(500 - 30 - 45 - 67.5 - 101.25);
    expect(four.before).toEqual({ score: 358, tier: 'probationary' });
    expect(four.after).toEqual({ score: 256, tier: 'untrusted' });
  });
});

describe('scoring - rewards', () => {
  it('scoring - rewards are linear and capped per window; a capped reward changes nothing', () => {
    // valid_traffic: delta 1, cap 2 per hour
    const { state, results } = applyAll(fresh(), ['valid_traffic', 'valid_traffic', 'valid_traffic'], T0 + 10);
    expect(results.map((r) => r.outcome)).toEqual(['applied', 'applied', 'capped']);
    expect(results.map((r) => r.delta)).toEqual([1, 1, 0]);
    expect(results[2]!.changed).toBe(false);
    expect(results[2]!.state).toBe(results[1]!.state); // the same object: nothing to write
    expect(state.score).toBe(502);
    expect(state.version).toBe(2);
  });

  it('scoring - the cap resets in the next window; the score decayed meanwhile', () => {
    const { state } = applyAll(fresh(), ['valid_traffic', 'valid_traffic', 'valid_traffic'], T0);
    const next = scorer.applyEvidence(state, 'valid_traffic', T0 + HOUR);
    expect(next.outcome).toBe('applied');
    // 502 decays for one hour with the above-baseline half-life, then + 1.
    expect(next.state.score).toBeCloseTo(500 + 2 * 2 ** (-HOUR / HALF_ABOVE) + 1, 9);
  });

  it('scoring - task_completed has its own window: delta 2, cap 6 per hour', () => {
    const { state, results } = applyAll(fresh(), Array(4).fill('task_completed'));
    expect(results.map((r) => r.delta)).toEqual([2, 2, 2, 0]);
    expect(state.score).toBe(506);
  });

  it('scoring - rewards stop at the ceiling 899 (verified_partner is not earned by traffic)', () => {
    const { state, results } = applyAll(withScore(898.5), ['valid_traffic', 'valid_traffic']);
    expect(results.map((r) => r.delta)).toEqual([0.5, 0]);
    expect(results[1]!.outcome).toBe('capped');
    expect(state.score).toBe(899);
    expect(scorer.tier(state, T0)).toBe('trusted');
  });
});

describe('scoring - decay', () => {
  for (const start of [200, 800, 0, 1000, 500]) {
    it(`scoring - decaying ${start} in 1 step or in 3,600 steps over one hour gives the same score`, () => {
      const state = withScore(start);
      const once = scorer.settle(state, T0 + HOUR);
      let stepped = state;
      for (let i = 1; i <= 3600; i++) stepped = scorer.settle(stepped, T0 + i * 1000);
      const halfLife = start > 500 ? HALF_ABOVE : HALF_BELOW;
      const expected = 500 + (start - 500) * 2 ** (-HOUR / halfLife);
      expect(once.score).toBeCloseTo(expected, 9);
      expect(Math.abs(stepped.score - once.score)).toBeLessThan(1e-9);
      expect(stepped.at).toBe(T0 + HOUR);
    });
  }

  it('scoring - reading the score does not depend on when the state was last settled', () => {
    const state = withScore(120);
    const settledHalfway = scorer.settle(state, T0 + 3 * DAY);
    const at = T0 + 10 * DAY;
    // 500 − 380 · 2^(−10/14)
    expect(scorer.exactScore(state, at)).toBeCloseTo(500 - 380 * 2 ** (-10 / 14), 9);
    expect(scorer.exactScore(settledHalfway, at)).toBeCloseTo(scorer.exactScore(state, at), 9);
  });

  it('scoring - one half-life halves the distance to the baseline', () => {
    expect(scorer.exactScore(withScore(900), T0 + HALF_ABOVE)).toBeCloseTo(700, 9);
    expect(scorer.exactScore(withScore(100), T0 + HALF_BELOW)).toBeCloseTo(300, 9);
  });

  it('scoring - a clock that steps back decays nothing and never moves the state back in time', () => {
    const state = withScore(200);
    expect(scorer.exactScore(state, T0 - HOUR)).toBe(200);
    const result = scorer.applyEvidence(state, 'task_failed', T0 - HOUR);
    expect(result.state.at).toBe(T0);
    expect(result.state.score).toBe(195);
  });

  it('scoring - nextTierChange names the first ms at which decay alone changes the tier', () => {
    const state = withScore(104.375);
    // Untrusted until the exact score reaches 299.5 (rounds to 300):
    // t = T0 + 14 d · log2((500 − 104.375) / (500 − 299.5))
    const exact = T0 + HALF_BELOW * Math.log2((500 - 104.375) / (500 - 299.5));
    const when = scorer.nextTierChange(state, T0)!;
    expect(when).toBe(Math.floor(exact) + 1);
    expect(scorer.tier(state, when - 2)).toBe('untrusted');
    expect(scorer.tier(state, when)).toBe('probationary');

    const high = withScore(760);
    // Trusted until the exact score drops below 699.5: t = T0 + 7 d · log2(260 / 199.5)
    const down = scorer.nextTierChange(high, T0)!;
    expect(down).toBe(Math.floor(T0 + HALF_ABOVE * Math.log2(260 / 199.5)) + 1);
    expect(scorer.tier(high, down - 2)).toBe('trusted');
    expect(scorer.tier(high, down)).toBe('standard');
    // Standard above the baseline never leaves standard by decay.
    expect(scorer.nextTierChange(withScore(650), T0)).toBeUndefined();
  });
});

describe('scoring - state', () => {
  it('scoring - applyEvidence is pure: the input state is not changed', () => {
    const state = fresh();
    const copy = structuredClone(state);
    Object.freeze(state);
    scorer.applyEvidence(state, 'equivocation', T0 + 5);
    scorer.applyEvidence(state, 'valid_traffic', T0 + 5);
    expect(state).toEqual(copy);
  });

  it('scoring - the state is plain JSON that reads back identically', () => {
    const { state } = applyAll(fresh(), ['policy_violation', 'valid_traffic', 'task_failed']);
    const parsed = parseTrustState(JSON.parse(JSON.stringify(state)));
    expect(parsed).toEqual({ ok: true, state });
  });

  it('scoring - a corrupt stored state is reported with its field, not thrown', () => {
    expect(parseTrustState({ ...fresh(), score: 'high' })).toMatchObject({ ok: false, field: 'score' });
    expect(parseTrustState({ ...fresh(), schema: 2 })).toMatchObject({ ok: false, field: 'schema' });
    expect(parseTrustState(null)).toMatchObject({ ok: false, field: '(root)' });
  });

  it('scoring - the evidence reference is bounded and escaped', () => {
    const result = scorer.applyEvidence(fresh(), { event: 'task_failed', ref: 'a\nb' + 'x'.repeat(5000) }, T0);
    expect(result.state.last?.ref?.length).toBe(1024);
    expect(result.state.last?.ref?.startsWith('a\\u000ab')).toBe(true);
  });

  it('scoring - misuse throws: unknown event, bad time, empty DID', () => {
    expect(() => scorer.applyEvidence(fresh(), 'forgery' as never, T0)).toThrow(InvalidArgumentError);
    expect(() => scorer.applyEvidence(fresh(), 'task_failed', Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => scorer.newState('', T0)).toThrow(InvalidArgumentError);
  });
});

describe('scoring - duplicate evidence', () => {
  it('scoring - one frame reported by many receivers counts once', () => {
    const key = 'signer:frame-id-1';
    const first = scorer.applyEvidence(fresh(), { event: 'policy_violation', key, ref: 'audit:7' }, T0);
    expect(first.state.score).toBe(470);
    const again = scorer.applyEvidence(first.state, { event: 'policy_violation', key, ref: 'audit:9' }, T0 + 10);
    expect(again.outcome).toBe('duplicate');
    expect(again.changed).toBe(false);
    expect(again.state).toBe(first.state);
    // Another frame is another offence: the second, 45.
    const other = scorer.applyEvidence(first.state, { event: 'policy_violation', key: 'signer:frame-id-2' }, T0);
    expect(other.state.score).toBe(500 - 30 - 45);
  });

  it('scoring - remembered evidence keys are bounded', () => {
    let state = fresh();
    for (let i = 0; i < 200; i++) state = scorer.applyEvidence(state, { event: 'task_timeout', key: `k${i}` }, T0).state;
    expect(state.seen).toHaveLength(64);
    expect(state.seen?.[63]).toBe('k199');
    expect(parseTrustState(JSON.parse(JSON.stringify(state))).ok).toBe(true);
  });
});

describe('scoring - over time', () => {
  it('scoring - a day of steady good traffic raises a new agent by less than 48 (2 per hour, minus decay)', () => {
    let state = fresh();
    // 60 valid frames an hour, for 24 hours: only the first two of each hour count.
    for (let hour = 0; hour < 24; hour++) {
      for (let minute = 0; minute < 60; minute++)
        state = scorer.applyEvidence(state, 'valid_traffic', T0 + hour * HOUR + minute * 60_000).state;
    }
    // Hand form, with e the excess over 500: at minute 0 of each hour e += 1; one minute of decay;
    // at minute 1 e += 1; then decay until minute 0 of the next hour (1 h − 1 min).
    const perMinute = 2 ** (-60_000 / HALF_ABOVE);
    let excess = 0;
    for (let hour = 0; hour < 24; hour++) {
      if (hour > 0) excess *= 2 ** (-(HOUR - 60_000) / HALF_ABOVE);
      excess = (excess + 1) * perMinute + 1;
    }
    // ...then decay from minute 1 of the last hour to minute 59.
    excess *= 2 ** ((-58 * 60_000) / HALF_ABOVE);
    expect(scorer.exactScore(state, T0 + 23 * HOUR + 59 * 60_000)).toBeCloseTo(500 + excess, 9);
    expect(excess).toBeLessThan(48);
    // Only credited frames change the state (48 writes, not 1,440).
    expect(state.counts.valid_traffic).toBe(48);
    expect(state.version).toBe(48);
  });

  it('scoring - random partitions of a span decay to the same score as one step', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 50; trial++) {
      const start = Math.floor(random() * 1001);
      const span = Math.floor(random() * 90 * DAY);
      let stepped = withScore(start);
      let t = T0;
      while (t < T0 + span) {
        t = Math.min(T0 + span, t + 1 + Math.floor(random() * 5 * DAY));
        stepped = scorer.settle(stepped, t);
      }
      const once = scorer.settle(withScore(start), T0 + span);
      expect(Math.abs(stepped.score - once.score)).toBeLessThan(1e-9);
    }
  });
});
