/**
 * Evidence codes: every score change carries exactly one of these as its
 * reason. The table is documented in docs/trust.md §Events.
 */
export const REWARD_EVENTS = {
  valid_traffic: 'validly signed traffic from the agent (credited at most capPerWindow per window)',
  task_completed: 'a task the agent accepted completed, reported with the signed task record',
} as const;

export const PENALTY_EVENTS = {
  sent_while_killed: 'the agent signed a frame while a kill that covered it was in force',
  policy_violation: "a validly signed frame broke a receiver's declared policy rule",
  equivocation: 'two different frames validly signed by the agent with the same id',
  scope_escalation: 'a delegation signed by the agent claimed a scope wider than its parent token',
  protocol_violation: 'a validly signed frame was refused for a reason that blames the signer (bad body, issuer mismatch, future iat)',
  task_failed: 'a task the agent accepted failed, reported with the signed task record',
  task_timeout: 'a task the agent accepted timed out, reported with the signed task record',
  bad_signature_authenticated: "secure mode: the agent's authenticated connection published a frame whose signature fails",
  replay_authenticated: "secure mode: the agent's authenticated connection published a replay",
  expiry_extended: "a delegation signed by the agent claimed validity outside its parent token's (later expiry or earlier not-before)",
  depth_exceeded: "a delegation signed by the agent claimed a depth not below its parent token's",
} as const;

export type RewardEvent = keyof typeof REWARD_EVENTS;
export type PenaltyEvent = keyof typeof PENALTY_EVENTS;
/** An event that changes the score of the agent it is attributed to. */
export type ScoreEvent = RewardEvent | PenaltyEvent;

export const REWARD_EVENT_NAMES = Object.keys(REWARD_EVENTS) as RewardEvent[];
export const PENALTY_EVENT_NAMES = Object.keys(PENALTY_EVENTS) as PenaltyEvent[];

export const isRewardEvent = (value: unknown): value is RewardEvent => typeof value === 'string' && Object.hasOwn(REWARD_EVENTS, value);
export const isPenaltyEvent = (value: unknown): value is PenaltyEvent => typeof value === 'string' && Object.hasOwn(PENALTY_EVENTS, value);
export const isScoreEvent = (value: unknown): value is ScoreEvent => isRewardEvent(value) || isPenaltyEvent(value);
