/**
 * @packageDocumentation
 * TrustMesh trust broker. This release holds the pure scoring core: the
 * versioned scoring policy, evidence events, the blame rule and the closed-form
 * decay. The service (KV bucket, pushes) builds on it. See docs/trust.md.
 *
 * @example
 * ```ts
 * import { attribute, createScorer, loadScoringPolicy } from '@trustmesh/broker'
 * const scorer = createScorer(loadScoringPolicy({ penalties: { events: { task_failed: { delta: 10 } } } }))
 * let state = scorer.newState('did:key:z6Mk…', Date.now())
 * const blame = attribute({ reason: 'replay', publisher: 'did:key:z6Mk…' }, { secure: false })
 * if (blame.outcome === 'attributed') state = scorer.applyEvidence(state, blame.event, Date.now()).state
 * console.log(scorer.currentScore(state, Date.now()), scorer.tier(state, Date.now()))
 * ```
 */
export {
  REWARD_EVENTS,
  PENALTY_EVENTS,
  REWARD_EVENT_NAMES,
  PENALTY_EVENT_NAMES,
  isRewardEvent,
  isPenaltyEvent,
  isScoreEvent,
} from './scoring/events.ts';
export type { RewardEvent, PenaltyEvent, ScoreEvent } from './scoring/events.ts';
export { DEFAULT_SCORING_POLICY, loadScoringPolicy, validateScoringPolicy, ScoringPolicyError } from './scoring/policy.ts';
export type { ScoringPolicy, ScoringPolicyOverride } from './scoring/policy.ts';
export { parseTrustState } from './scoring/state.ts';
export type { TrustState, ParseStateResult } from './scoring/state.ts';
export { decayed, timeToReach } from './scoring/decay.ts';
export type { DecayParams } from './scoring/decay.ts';
export { createScorer, MAX_EVIDENCE_KEYS } from './scoring/scorer.ts';
export type { Scorer, Evidence, ApplyResult } from './scoring/scorer.ts';
export { attribute, BLAME, countUnattributed, emptyTally } from './scoring/attribution.ts';
export type { Rejection, AttributionContext, Attribution, BlameRule, UnattributedTally } from './scoring/attribution.ts';
// The service (docs/trust.md §9): KV-backed scores, evidence intake, pushed updates, queries.
export { createBroker, BrokerConflictError } from './service/broker.ts';
export type { Broker, BrokerInit, BrokerStats, BrokerChange } from './service/broker.ts';
export { EvidenceChecker, rulesHash } from './service/evidence.ts';
export type { Finding, EvidenceContext, CaptureReader } from './service/evidence.ts';
export { DELEGATION_EVENTS } from './service/delegation.ts';
export { ScoreStore, isConflict } from './service/store.ts';
export type { Read } from './service/store.ts';
