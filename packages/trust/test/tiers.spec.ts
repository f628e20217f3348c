import { describe, expect, it } from 'vitest';
import {
  compareTiers,
  DEFAULT_TIER_LADDER,
  NEW_AGENT_SCORE,
  TierLadderError,
  tierAtLeast,
  tierOf,
  validateTierLadder,
} from '../src/index.ts';

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TierLadderError);
    return (error as TierLadderError).field;
  }
  throw new Error('expected a TierLadderError');
}

describe('tiers - lines', () => {
  const cases: [number, string][] = [
    [0, 'untrusted'],
    [299, 'untrusted'],
    [300, 'probationary'],
    [499, 'probationary'],
    [500, 'standard'],
    [699, 'standard'],
    [700, 'trusted'],
    [899, 'trusted'],
    [900, 'verified_partner'],
    [1000, 'verified_partner'],
  ];
  for (const [score, tier] of cases) {
    it(`tiers - ${score} is ${tier}`, () => expect(tierOf(score)).toBe(tier));
  }

  it('tiers - a new agent (500) is standard, below trusted', () => {
    expect(tierOf(NEW_AGENT_SCORE)).toBe('standard');
    expect(tierAtLeast(tierOf(NEW_AGENT_SCORE), 'trusted')).toBe(false);
  });

  it('tiers - NaN never grants trust', () => expect(tierOf(Number.NaN)).toBe('untrusted'));

  it('tiers - order', () => {
    expect(compareTiers('untrusted', 'probationary')).toBeLessThan(0);
    expect(compareTiers('verified_partner', 'trusted')).toBeGreaterThan(0);
    expect(tierAtLeast('standard', 'standard')).toBe(true);
    expect(tierAtLeast('probationary', 'standard')).toBe(false);
  });
});

describe('tiers - ladder validation', () => {
  it('tiers - the default ladder is valid', () => {
    expect(validateTierLadder({ ...DEFAULT_TIER_LADDER })).toEqual({
      probationary: 300,
      standard: 500,
      trusted: 700,
      verified_partner: 900,
    });
  });

  it('tiers - a custom ordered ladder is used by tierOf', () => {
    const ladder = validateTierLadder({ probationary: 100, standard: 200, trusted: 300, verified_partner: 400 });
    expect(tierOf(150, ladder)).toBe('probationary');
    expect(tierOf(400, ladder)).toBe('verified_partner');
  });

  it('tiers - lines out of order are refused, naming the first bad line', () => {
    expect(fieldOf(() => validateTierLadder({ ...DEFAULT_TIER_LADDER, trusted: 500 }))).toBe('trusted');
    expect(fieldOf(() => validateTierLadder({ ...DEFAULT_TIER_LADDER, standard: 200 }))).toBe('standard');
    expect(fieldOf(() => validateTierLadder({ ...DEFAULT_TIER_LADDER, probationary: 0 }))).toBe('probationary');
    expect(fieldOf(() => validateTierLadder({ ...DEFAULT_TIER_LADDER, verified_partner: 1001 }))).toBe('verified_partner');
  });

  it('tiers - missing, non-integer and unknown lines are refused', () => {
    const { trusted: _omitted, ...missing } = DEFAULT_TIER_LADDER;
    expect(fieldOf(() => validateTierLadder(missing))).toBe('trusted');
    expect(fieldOf(() => validateTierLadder({ ...DEFAULT_TIER_LADDER, standard: 500.5 }))).toBe('standard');
    expect(fieldOf(() => validateTierLadder({ ...DEFAULT_TIER_LADDER, refuse: 100 }))).toBe('refuse');
    expect(fieldOf(() => validateTierLadder(null))).toBe('ladder');
  });

  it('tiers - the error says which constraint failed', () => {
    expect(() => validateTierLadder({ ...DEFAULT_TIER_LADDER, trusted: 500 })).toThrow(/trusted must be greater than standard \(500\)/);
  });
});
