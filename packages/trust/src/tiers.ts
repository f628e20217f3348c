import { TrustMeshError } from '@trustmesh/protocol';

/** Lowest and highest score; scores are clamped to this range. */
export const SCORE_MIN = 0;
export const SCORE_MAX = 1000;
/** Where a new DID starts, and where scores drift back to (docs/trust.md §Decay). */
export const NEW_AGENT_SCORE = 500;

/** Tier names from the lowest to the highest. Below `probationary` is the refuse line. */
export const TIER_NAMES = ['untrusted', 'probationary', 'standard', 'trusted', 'verified_partner'] as const;
export type Tier = (typeof TIER_NAMES)[number];

export const isTier = (value: unknown): value is Tier => typeof value === 'string' && (TIER_NAMES as readonly string[]).includes(value);

/**
 * The tier ladder as data: the lowest score of each tier above `untrusted`
 * (which starts at {@link SCORE_MIN}). `probationary` is the refuse line:
 * scores below it are `untrusted` and their frames are refused.
 */
export interface TierLadder {
  readonly probationary: number;
  readonly standard: number;
  readonly trusted: number;
  readonly verified_partner: number;
}

export const DEFAULT_TIER_LADDER: TierLadder = Object.freeze({
  probationary: 300,
  standard: 500,
  trusted: 700,
  verified_partner: 900,
});

/** A ladder (or another configuration value) is invalid; `field` names it, `constraint` says what it must satisfy. */
export class TierLadderError extends TrustMeshError {
  readonly field: string;
  readonly constraint: string;
  constructor(field: string, constraint: string) {
    super('invalid_tier_ladder', `tier ladder: ${field} ${constraint}`);
    this.name = 'TierLadderError';
    this.field = field;
    this.constraint = constraint;
  }
}

const LINES = ['probationary', 'standard', 'trusted', 'verified_partner'] as const;

/**
 * Checks that a ladder is ordered, SCORE_MIN < probationary < standard < trusted
 * < verified_partner <= SCORE_MAX, with integer lines; returns a frozen copy.
 * Throws {@link TierLadderError} naming the first bad field. Run at start-up.
 */
export function validateTierLadder(ladder: unknown): TierLadder {
  if (typeof ladder !== 'object' || ladder === null) throw new TierLadderError('ladder', 'must be an object');
  const record = ladder as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(LINES as readonly string[]).includes(key))
      throw new TierLadderError(key, `is not a tier line (expected one of ${LINES.join(', ')})`);
  }
  let below: { name: string; value: number } = { name: 'the minimum score', value: SCORE_MIN };
  for (const name of LINES) {
    const value = record[name];
    if (typeof value !== 'number' || !Number.isInteger(value)) throw new TierLadderError(name, 'must be an integer');
    if (value <= below.value) throw new TierLadderError(name, `must be greater than ${below.name} (${below.value}), got ${value}`);
    if (value > SCORE_MAX) throw new TierLadderError(name, `must be at most ${SCORE_MAX}, got ${value}`);
    below = { name, value };
  }
  return Object.freeze({
    probationary: record.probationary as number,
    standard: record.standard as number,
    trusted: record.trusted as number,
    verified_partner: record.verified_partner as number,
  });
}

/**
 * The tier of a score. Pass the enforced (rounded) score; NaN is treated as
 * the lowest score, so a corrupt value never grants trust.
 */
export function tierOf(score: number, ladder: TierLadder = DEFAULT_TIER_LADDER): Tier {
  if (!(score >= ladder.probationary)) return 'untrusted';
  if (score < ladder.standard) return 'probationary';
  if (score < ladder.trusted) return 'standard';
  if (score < ladder.verified_partner) return 'trusted';
  return 'verified_partner';
}

/** The lowest score of a tier under a ladder. */
export function tierFloor(tier: Tier, ladder: TierLadder = DEFAULT_TIER_LADDER): number {
  return tier === 'untrusted' ? SCORE_MIN : ladder[tier];
}

/** Tier order: negative if a is below b, 0 if equal, positive if above. */
export const compareTiers = (a: Tier, b: Tier): number => TIER_NAMES.indexOf(a) - TIER_NAMES.indexOf(b);

/** True if `tier` is `minimum` or above. */
export const tierAtLeast = (tier: Tier, minimum: Tier): boolean => compareTiers(tier, minimum) >= 0;
