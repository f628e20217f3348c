import { InvalidArgumentError } from '@trustmesh/protocol';
import { type Tier, safeText, tierFloor, TIER_NAMES, tierOf } from '@trustmesh/trust';
import { decayed, type DecayParams, timeToReach } from './decay.ts';
import { isPenaltyEvent, isRewardEvent, type PenaltyEvent, type RewardEvent, type ScoreEvent } from './events.ts';
import { DEFAULT_SCORING_POLICY, type ScoringPolicy } from './policy.ts';
import type { TrustState } from './state.ts';

/** One piece of evidence already attributed to the agent whose state it is applied to. */
export interface Evidence {
  readonly event: ScoreEvent;
  /** Where the evidence is (e.g. the audit position of the signed frame); kept in `state.last`, at most 1024 characters. */
  readonly ref?: string;
  /**
   * Identity of the evidence, e.g. the offending frame's (signer, id) in hex. The same
   * key applied twice counts once: many receivers report one broadcast frame.
   * The last {@link MAX_EVIDENCE_KEYS} keys are kept per DID.
   */
  readonly key?: string;
}

/** Evidence keys remembered per DID for deduplication. */
export const MAX_EVIDENCE_KEYS = 64;

/**
 * The result of {@link Scorer.applyEvidence}.
 * - `applied`: the score changed; persist `state` (compare-and-set on the
 *   version read) and push the update.
 * - `capped`: a reward with nothing left to give (window cap or ceiling
 *   reached); `state` is the very object passed in: nothing to write.
 * - `duplicate`: evidence with a `key` already applied; nothing to write.
 */
export interface ApplyResult {
  readonly outcome: 'applied' | 'capped' | 'duplicate';
  readonly changed: boolean;
  readonly state: TrustState;
  /** Change to the unrounded score, after decay up to `now` (negative for penalties; 0 when capped). */
  readonly delta: number;
  /** The event code: the reason carried by the pushed update. */
  readonly reason: ScoreEvent;
  /** For a penalty: this offence's rank within the memory horizon (1 for the first). */
  readonly repetition?: number;
  /** Enforced (rounded) score and tier before and after. */
  readonly before: { readonly score: number; readonly tier: Tier };
  readonly after: { readonly score: number; readonly tier: Tier };
}

/** The pure scoring functions bound to one policy. Time is always passed in (ms since the epoch). */
export interface Scorer {
  readonly policy: ScoringPolicy;
  /** The state of a DID never scored before: the baseline, version 0 (not stored yet). */
  newState(did: string, now: number): TrustState;
  /** Applies one attributed event. Pure: returns a new state, never changes the one given. */
  applyEvidence(state: TrustState, evidence: Evidence | ScoreEvent, now: number): ApplyResult;
  /** Unrounded score at `now` (decay applied). For arithmetic and tests. */
  exactScore(state: TrustState, now: number): number;
  /** The enforced score at `now`: the unrounded score rounded half up, an integer in [min, max]. */
  currentScore(state: TrustState, now: number): number;
  /** The tier of {@link currentScore}. */
  tier(state: TrustState, now: number): Tier;
  /**
   * The first ms at which decay alone changes the tier, or undefined if it
   * never will. Lets a broker schedule one timer per agent whose tier is
   * about to change, instead of a periodic sweep.
   */
  nextTierChange(state: TrustState, now: number): number | undefined;
  /** Moves the stored score's reference time to `now` without changing the score at any later time. */
  settle(state: TrustState, now: number): TrustState;
}

const MAX_REF = 1024;

interface Change {
  score: number;
  patch: Partial<Pick<TrustState, 'rewards' | 'offences'>>;
  repetition: number | undefined;
}

function checkTime(now: number): void {
  if (!Number.isSafeInteger(now) || now < 0) throw new InvalidArgumentError(`now must be a non-negative integer of ms, got ${now}`);
}

/** Creates a {@link Scorer} for a validated policy (default: {@link DEFAULT_SCORING_POLICY}). */
export function createScorer(policy: ScoringPolicy = DEFAULT_SCORING_POLICY): Scorer {
  const { min, max, baseline } = policy.score;
  const decay: DecayParams = { baseline, ...policy.decay };

  const exactScore = (state: TrustState, now: number): number => decayed(state.score, state.at, now, decay);
  const enforce = (exact: number): number => Math.min(max, Math.max(min, Math.round(exact)));
  const view = (exact: number) => {
    const score = enforce(exact);
    return { score, tier: tierOf(score, policy.tiers) };
  };

  const settle = (state: TrustState, now: number): TrustState => {
    checkTime(now);
    if (now <= state.at) return state;
    return { ...state, score: exactScore(state, now), at: now };
  };

  const reward = (state: TrustState, event: RewardEvent, exact: number, now: number): Change | undefined => {
    const rule = policy.rewards.events[event];
    const window = Math.floor(now / rule.windowMs) * rule.windowMs;
    const current = state.rewards[event];
    const gained = current !== undefined && current.window === window ? current.gained : 0;
    const credit = Math.min(rule.delta, rule.capPerWindow - gained, policy.rewards.ceiling - exact);
    if (!(credit > 0)) return undefined;
    return {
      score: Math.min(max, exact + credit),
      patch: { rewards: { ...state.rewards, [event]: { window, gained: gained + credit } } },
      repetition: undefined,
    };
  };

  const penalize = (state: TrustState, event: PenaltyEvent, exact: number, now: number): Change => {
    const rule = policy.penalties.events[event];
    const horizon = now - policy.penalties.memoryMs;
    const remembered = (state.offences[event] ?? []).filter((t) => t > horizon);
    const repetition = remembered.length + 1;
    const penalty = Math.min(rule.max, rule.delta * rule.growth ** (repetition - 1));
    remembered.push(now);
    const kept = remembered.slice(-policy.penalties.maxRemembered);
    return { score: Math.max(min, exact - penalty), patch: { offences: { ...state.offences, [event]: kept } }, repetition };
  };

  return {
    policy,
    newState(did: string, now: number): TrustState {
      checkTime(now);
      if (typeof did !== 'string' || did.length === 0) throw new InvalidArgumentError('did must be a non-empty string');
      return { schema: 1, did, version: 0, score: baseline, at: now, since: now, rewards: {}, offences: {}, counts: {} };
    },

    applyEvidence(state: TrustState, evidence: Evidence | ScoreEvent, now: number): ApplyResult {
      checkTime(now);
      const { event, ref, key } = typeof evidence === 'string' ? { event: evidence, ref: undefined, key: undefined } : evidence;
      if (!isRewardEvent(event) && !isPenaltyEvent(event))
        throw new InvalidArgumentError(`unknown score event: ${safeText(String(event), 64)}`);
      const at = Math.max(state.at, now);
      const exact = exactScore(state, at);
      const before = view(exact);
      const evidenceKey = key === undefined ? undefined : safeText(String(key), 256);
      if (evidenceKey !== undefined && state.seen?.includes(evidenceKey)) {
        return { outcome: 'duplicate', changed: false, state, delta: 0, reason: event, before, after: before };
      }
      let change: Change | undefined;
      if (isRewardEvent(event)) change = reward(state, event, exact, at);
      else change = penalize(state, event, exact, at);
      if (change === undefined) return { outcome: 'capped', changed: false, state, delta: 0, reason: event, before, after: before };
      const delta = change.score - exact;
      const next: TrustState = {
        ...state,
        ...change.patch,
        version: state.version + 1,
        score: change.score,
        at,
        counts: { ...state.counts, [event]: (state.counts[event] ?? 0) + 1 },
        ...(evidenceKey === undefined ? {} : { seen: [...(state.seen ?? []), evidenceKey].slice(-MAX_EVIDENCE_KEYS) }),
        last: ref === undefined ? { event, delta, at } : { event, delta, at, ref: safeText(ref, MAX_REF) },
      };
      return {
        outcome: 'applied',
        changed: true,
        state: next,
        delta,
        reason: event,
        ...(change.repetition === undefined ? {} : { repetition: change.repetition }),
        before,
        after: view(change.score),
      };
    },

    exactScore,
    currentScore: (state, now) => enforce(exactScore(state, now)),
    tier: (state, now) => view(exactScore(state, now)).tier,

    nextTierChange(state: TrustState, now: number): number | undefined {
      const exact = exactScore(state, now);
      const { tier } = view(exact);
      const index = TIER_NAMES.indexOf(tier);
      // Rounded half up: the score leaves a tier downward once the exact value drops below (floor − 0.5),
      // and enters the next tier up once it reaches (next floor − 0.5).
      const target =
        exact > baseline
          ? tierFloor(tier, policy.tiers) - 0.5
          : index + 1 < TIER_NAMES.length
            ? tierFloor(TIER_NAMES[index + 1]!, policy.tiers) - 0.5
            : undefined;
      if (target === undefined) return undefined;
      const when = timeToReach(exact, now, target, decay);
      return when === undefined ? undefined : Math.floor(when) + 1;
    },

    settle,
  };
}
