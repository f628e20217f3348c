import { describe, expect, it } from 'vitest';
import { DEFAULT_SCORING_POLICY, loadScoringPolicy, ScoringPolicyError, validateScoringPolicy } from '../src/index.ts';

/** The field named by the ScoringPolicyError that `load` throws. */
function fieldOf(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ScoringPolicyError);
    return (error as ScoringPolicyError).field;
  }
  throw new Error('expected a ScoringPolicyError');
}

describe('scoring policy - default', () => {
  it('scoring policy - the shipped default loads, is versioned and frozen', () => {
    const policy = loadScoringPolicy();
    expect(policy).toBe(DEFAULT_SCORING_POLICY);
    expect(policy.format).toBe(1);
    expect(policy.id).toBe('trustmesh-default-2026-11');
    expect(policy.score).toEqual({ min: 0, max: 1000, baseline: 500 });
    expect(policy.tiers).toEqual({ probationary: 300, standard: 500, trusted: 700, verified_partner: 900 });
    expect(Object.isFrozen(policy.penalties.events.equivocation)).toBe(true);
  });
});

describe('scoring policy - operator override', () => {
  it('scoring policy - an override merges field by field over the default', () => {
    const policy = loadScoringPolicy({ id: 'acme-1', penalties: { events: { task_failed: { delta: 12 } } } });
    expect(policy.id).toBe('acme-1');
    expect(policy.penalties.events.task_failed).toEqual({ delta: 12, growth: 1.2, max: 40 });
    expect(policy.penalties.events.policy_violation).toEqual(DEFAULT_SCORING_POLICY.penalties.events.policy_violation);
    expect(policy.decay).toEqual(DEFAULT_SCORING_POLICY.decay);
  });

  it('scoring policy - bad values are refused with the field named', () => {
    expect(fieldOf(() => loadScoringPolicy({ penalties: { events: { equivocation: { growth: 0.5 } } } }))).toBe(
      'penalties.events.equivocation.growth',
    );
    expect(fieldOf(() => loadScoringPolicy({ decay: { halfLifeAboveMs: -1 } }))).toBe('decay.halfLifeAboveMs');
    expect(fieldOf(() => loadScoringPolicy({ rewards: { events: { valid_traffic: { delta: 'one' } } } }))).toBe(
      'rewards.events.valid_traffic.delta',
    );
    expect(fieldOf(() => loadScoringPolicy({ format: 2 }))).toBe('format');
    expect(fieldOf(() => loadScoringPolicy({ ladder: { event: 'forgery' } }))).toBe('ladder.event');
  });

  it('scoring policy - unknown fields and unknown events are refused, not ignored', () => {
    expect(fieldOf(() => loadScoringPolicy({ penalties: { events: { forgery: { delta: 10, growth: 1, max: 10 } } } }))).toBe(
      'penalties.events.forgery',
    );
    expect(fieldOf(() => loadScoringPolicy({ decay: { tau: 1000 } }))).toBe('decay.tau');
    expect(fieldOf(() => loadScoringPolicy([] as never))).toBe('(root)');
  });

  it('scoring policy - a complete policy must name every event', () => {
    const { penalties, ...rest } = structuredClone(DEFAULT_SCORING_POLICY) as unknown as Record<string, unknown> & {
      penalties: { events: Record<string, unknown> };
    };
    delete penalties.events.task_timeout;
    expect(fieldOf(() => validateScoringPolicy({ ...rest, penalties }))).toBe('penalties.events.task_timeout');
  });
});

describe('scoring policy - ladder checks', () => {
  it('scoring policy - tier lines out of order are refused, naming the line', () => {
    expect(fieldOf(() => loadScoringPolicy({ tiers: { trusted: 450 } }))).toBe('tiers.trusted');
    expect(fieldOf(() => loadScoringPolicy({ tiers: { verified_partner: 1001 } }))).toBe('tiers.verified_partner');
    expect(fieldOf(() => loadScoringPolicy({ tiers: { probationary: 0 } }))).toBe('tiers.probationary');
  });

  it('scoring policy - a new agent must start neither refused nor trusted', () => {
    expect(fieldOf(() => loadScoringPolicy({ score: { baseline: 750 } }))).toBe('score.baseline');
    expect(fieldOf(() => loadScoringPolicy({ score: { baseline: 250 } }))).toBe('score.baseline');
  });

  it('scoring policy - penalties too weak to cross the refuse line are refused', () => {
    // 5 × 30 with growth 1 takes 500 only to 350, above 300.
    expect(fieldOf(() => loadScoringPolicy({ penalties: { events: { policy_violation: { growth: 1 } } } }))).toBe(
      'penalties.events.policy_violation',
    );
    // 30 + 45 + 67.5 + 101.25 = 243.75: 4 are enough (500 → 256.25), 3 are not (→ 357.5).
    expect(loadScoringPolicy({ ladder: { refuseWithin: 4 } }).ladder.refuseWithin).toBe(4);
    expect(fieldOf(() => loadScoringPolicy({ ladder: { refuseWithin: 3 } }))).toBe('penalties.events.policy_violation');
  });

  it('scoring policy - rewards too weak to hold the trusted line against decay are refused', () => {
    // Decay at 700 with a 7-day half-life: 200 · ln 2 / 604,800,000 ≈ 2.29e-7 points per ms.
    // Rewards of 0.0001 + 0.0001 points per hour ≈ 5.6e-11 per ms cannot hold it.
    const weak = { delta: 0.0001, capPerWindow: 0.0001 };
    expect(fieldOf(() => loadScoringPolicy({ rewards: { events: { valid_traffic: weak, task_completed: weak } } }))).toBe('rewards.events');
  });

  it('scoring policy - the reward ceiling must allow the trusted tier', () => {
    expect(fieldOf(() => loadScoringPolicy({ rewards: { ceiling: 650 } }))).toBe('rewards.ceiling');
  });

  it('scoring policy - an event max below its delta is refused', () => {
    expect(fieldOf(() => loadScoringPolicy({ penalties: { events: { task_failed: { max: 1 } } } }))).toBe(
      'penalties.events.task_failed.max',
    );
  });
});
