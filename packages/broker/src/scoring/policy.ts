import { TrustMeshError } from '@trustmesh/protocol';
import { type TierLadder, TierLadderError, validateTierLadder, z } from '@trustmesh/trust';
import defaultPolicyJson from '../../policy/default-policy.json' with { type: 'json' };
import { PENALTY_EVENT_NAMES, type PenaltyEvent, REWARD_EVENT_NAMES, type RewardEvent } from './events.ts';

/** The scoring policy is invalid; `field` is the path of the first bad value (e.g. `penalties.events.equivocation.growth`). */
export class ScoringPolicyError extends TrustMeshError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('invalid_scoring_policy', `scoring policy: ${field}: ${message}`, options);
    this.name = 'ScoringPolicyError';
    this.field = field;
  }
}

const ms = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const points = z.number().positive().finite();

const rewardRule = z.strictObject({
  /** Points per event. */
  delta: points,
  /** Length of the fixed windows the cap counts in, aligned to the epoch. */
  windowMs: ms,
  /** Most points this event can add in one window. */
  capPerWindow: points,
});

const penaltyRule = z.strictObject({
  /** Points taken by the first offence within the memory horizon. */
  delta: points,
  /** The n-th offence of the same event within the horizon takes delta × growth^(n−1). */
  growth: z.number().min(1).finite(),
  /** Most points one offence can take. */
  max: points,
});

const eventMap = <K extends string, S extends z.ZodType>(names: readonly K[], rule: S) =>
  z.strictObject(Object.fromEntries(names.map((name) => [name, rule])) as { [P in K]: S });

const policySchema = z.strictObject({
  format: z.literal(1),
  id: z.string().min(1).max(128),
  score: z.strictObject({ min: z.number().int(), max: z.number().int(), baseline: z.number().int() }),
  tiers: z.unknown(),
  decay: z.strictObject({ halfLifeAboveMs: ms, halfLifeBelowMs: ms }),
  rewards: z.strictObject({ ceiling: z.number().int(), events: eventMap(REWARD_EVENT_NAMES, rewardRule) }),
  penalties: z.strictObject({
    memoryMs: ms,
    maxRemembered: z.number().int().min(1).max(1024),
    events: eventMap(PENALTY_EVENT_NAMES, penaltyRule),
  }),
  ladder: z.strictObject({
    event: z.enum(PENALTY_EVENT_NAMES as [PenaltyEvent, ...PenaltyEvent[]]),
    refuseWithin: z.number().int().min(1),
  }),
});

type ParsedPolicy = z.infer<typeof policySchema>;

/** A validated scoring policy (docs/trust.md §Scoring policy file). Plain, frozen data. */
export interface ScoringPolicy {
  readonly format: 1;
  readonly id: string;
  readonly score: { readonly min: number; readonly max: number; readonly baseline: number };
  readonly tiers: TierLadder;
  readonly decay: { readonly halfLifeAboveMs: number; readonly halfLifeBelowMs: number };
  readonly rewards: {
    readonly ceiling: number;
    readonly events: { readonly [E in RewardEvent]: { readonly delta: number; readonly windowMs: number; readonly capPerWindow: number } };
  };
  readonly penalties: {
    readonly memoryMs: number;
    readonly maxRemembered: number;
    readonly events: { readonly [E in PenaltyEvent]: { readonly delta: number; readonly growth: number; readonly max: number } };
  };
  readonly ladder: { readonly event: PenaltyEvent; readonly refuseWithin: number };
}

/** A partial policy: any subset of fields, merged over the default. */
export type ScoringPolicyOverride = { readonly [key: string]: unknown };

/** The shipped default policy, validated. */
export const DEFAULT_SCORING_POLICY: ScoringPolicy = validateScoringPolicy(defaultPolicyJson);

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;

/** Objects merge key by key; anything else in the override replaces. */
function merge(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (key === '__proto__') continue;
    out[key] = Object.hasOwn(base, key) ? merge(base[key], value) : value;
  }
  return out;
}

/**
 * The operator's policy: `override` (a partial policy, e.g. parsed from a
 * JSON file) merged over the default, then validated as a whole. With no
 * override, the default. Throws {@link ScoringPolicyError}. Run at start-up.
 */
export function loadScoringPolicy(override?: ScoringPolicyOverride): ScoringPolicy {
  if (override === undefined) return DEFAULT_SCORING_POLICY;
  if (!isPlainObject(override)) throw new ScoringPolicyError('(root)', 'an override must be a plain object');
  return validateScoringPolicy(merge(defaultPolicyJson, override));
}

/**
 * Validates a complete policy: field types and ranges (zod), the tier
 * ladder's order, and that the weights can cross the lines (see
 * docs/trust.md §Ladder checks). Returns a frozen copy.
 */
export function validateScoringPolicy(input: unknown): ScoringPolicy {
  const parsed = policySchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    const field = path.length === 0 ? '(root)' : path.map(String).join('.');
    throw new ScoringPolicyError(field, issue.message);
  }
  let tiers: TierLadder;
  try {
    tiers = validateTierLadder(parsed.data.tiers);
  } catch (error) {
    if (error instanceof TierLadderError) throw new ScoringPolicyError(`tiers.${error.field}`, error.constraint, { cause: error });
    throw error;
  }
  const policy = { ...parsed.data, tiers } as ParsedPolicy & { tiers: TierLadder };
  checkLadder(policy);
  return deepFreeze(policy) as ScoringPolicy;
}

function checkLadder(p: ParsedPolicy & { tiers: TierLadder }): void {
  const { min, max, baseline } = p.score;
  const fail = (field: string, message: string): never => {
    throw new ScoringPolicyError(field, message);
  };
  if (min >= max) fail('score.min', `must be below score.max (${max})`);
  if (p.tiers.probationary <= min) fail('tiers.probationary', `must be above score.min (${min})`);
  if (p.tiers.verified_partner > max) fail('tiers.verified_partner', `must be at most score.max (${max})`);
  // Identities are free: a new DID is neither refused nor trusted.
  if (baseline < p.tiers.probationary || baseline >= p.tiers.trusted) {
    fail('score.baseline', `must be at least tiers.probationary (${p.tiers.probationary}) and below tiers.trusted (${p.tiers.trusted})`);
  }
  if (p.rewards.ceiling < p.tiers.trusted || p.rewards.ceiling > max) {
    fail('rewards.ceiling', `must be at least tiers.trusted (${p.tiers.trusted}) and at most score.max (${max})`);
  }
  // Sustained rewards must beat decay at the trusted line, or no agent could stay trusted.
  let pointsPerMs = 0;
  for (const name of REWARD_EVENT_NAMES) {
    const rule = p.rewards.events[name];
    if (rule.capPerWindow < rule.delta) fail(`rewards.events.${name}.capPerWindow`, `must be at least delta (${rule.delta})`);
    pointsPerMs += rule.capPerWindow / rule.windowMs;
  }
  const decayAtTrusted = ((p.tiers.trusted - baseline) * Math.LN2) / p.decay.halfLifeAboveMs;
  if (pointsPerMs <= decayAtTrusted) {
    fail(
      'rewards.events',
      `the most rewards can add per ms (${pointsPerMs}) must exceed the decay at tiers.trusted (${decayAtTrusted} per ms)`,
    );
  }
  for (const name of PENALTY_EVENT_NAMES) {
    const rule = p.penalties.events[name];
    if (rule.max < rule.delta) fail(`penalties.events.${name}.max`, `must be at least delta (${rule.delta})`);
  }
  // The ladder event, repeated refuseWithin times at once, must take a new agent below the refuse line.
  const rule = p.penalties.events[p.ladder.event];
  let score = baseline;
  for (let n = 1; n <= p.ladder.refuseWithin; n++) score -= Math.min(rule.max, rule.delta * rule.growth ** (n - 1));
  if (p.ladder.refuseWithin > p.penalties.maxRemembered) {
    fail('ladder.refuseWithin', `must be at most penalties.maxRemembered (${p.penalties.maxRemembered})`);
  }
  if (!(score < p.tiers.probationary)) {
    fail(
      `penalties.events.${p.ladder.event}`,
      `${p.ladder.refuseWithin} offences take a new agent only to ${score}, not below tiers.probationary (${p.tiers.probationary})`,
    );
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
