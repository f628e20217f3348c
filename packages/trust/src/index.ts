/**
 * @packageDocumentation
 * TrustMesh trust, the pure part: tiers and the tier ladder, and policy rules
 * as data, checked at the receiver on every verified frame. See docs/trust.md.
 *
 * @example
 * ```ts
 * import { createPolicy, tierOf } from '@trustmesh/trust'
 * const policy = createPolicy({
 *   rules: {
 *     mesh: { maxBytes: 65536 },
 *     types: { 'task.run': { minTier: 'standard', rate: { count: 10, perMs: 1000 },
 *       schema: { type: 'object', properties: { task: { type: 'string' } }, required: ['task'] } } },
 *   },
 * })
 * const verdict = policy.check({ from: 'did:key:z6Mk…', typ: 'task.run', size: 180,
 *   data: { task: 'sum' }, senderTier: tierOf(512) })
 * if (!verdict.ok) console.log(verdict.reason, verdict.rule, verdict.detail)
 * ```
 */
export {
  SCORE_MIN,
  SCORE_MAX,
  NEW_AGENT_SCORE,
  TIER_NAMES,
  DEFAULT_TIER_LADDER,
  TierLadderError,
  isTier,
  validateTierLadder,
  tierOf,
  tierFloor,
  compareTiers,
  tierAtLeast,
} from './tiers.ts';
export type { Tier, TierLadder } from './tiers.ts';
export { createPolicy, POLICY_RULES } from './policy/engine.ts';
export type { PolicyEngine, PolicyInit, PolicyInput, PolicyResult, PolicyAccept, PolicyRefusal, PolicyRuleName } from './policy/engine.ts';
export { compileRules, PolicyRuleError } from './policy/rules.ts';
export type { PolicyRules, RuleSet, JsonSchema } from './policy/rules.ts';
export { RateLimiter } from './policy/rate-limiter.ts';
export type { RateLimit, RateLimiterInit } from './policy/rate-limiter.ts';
export { safeText, MAX_DETAIL_LENGTH } from './policy/detail.ts';
/**
 * The zod this package validates with. Build rule schemas (`RuleSet.schema`)
 * with it: a schema from another copy of zod is not recognised as one.
 */
export { z } from 'zod';
// Client side (docs/trust.md §9-10): the score cache and guards, and the trust wire shared with the broker.
export { trustGuard } from './client/guard.ts';
export type { TrustGuard, TrustGuardInit, TrustGuardStats } from './client/guard.ts';
export { UntrustedPeerError } from './client/errors.ts';
export { ScoreCache } from './client/cache.ts';
export { reportDelegationViolation, delegationReport } from './client/delegation.ts';
export type { DelegationEvidence } from './client/delegation.ts';
export {
  TRUST_KINDS,
  TRUST_TYPES,
  REPORT_CLAIMS,
  MAX_REPORT_FRAMES,
  NON_AGENT_KEY_PREFIX,
  parseTrustUpdate,
  parseTrustReport,
} from './client/wire.ts';
export type {
  TrustUpdate,
  TrustView,
  TrustReport,
  ReportedFrame,
  ReportClaim,
  RulesDeclaration,
  StoredScore,
  ParseReportResult,
} from './client/wire.ts';
