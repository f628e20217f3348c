import { z } from '@trustmesh/trust';
import { PENALTY_EVENT_NAMES, type PenaltyEvent, REWARD_EVENT_NAMES, type RewardEvent, type ScoreEvent } from './events.ts';

/**
 * One agent's trust state: plain JSON, the value stored under the agent's key
 * in the trust bucket. The score is stored unrounded with the time it was
 * computed (`at`); its value at any later time follows from the decay formula
 * (docs/trust.md §Decay), so nothing needs rewriting as time passes.
 */
export interface TrustState {
  /** Format of this object; 1. */
  readonly schema: 1;
  readonly did: string;
  /** +1 on every stored change. The caller's compare-and-set token and the order of pushed updates. */
  readonly version: number;
  /** Unrounded score at time `at`. Round only to display or enforce. */
  readonly score: number;
  /** ms since the epoch at which `score` holds (t0 of the decay formula). */
  readonly at: number;
  /** When the broker first scored this DID. */
  readonly since: number;
  /** Per reward event: the start of the current window and the points credited in it. */
  readonly rewards: { readonly [E in RewardEvent]?: { readonly window: number; readonly gained: number } };
  /** Per penalty event: times of offences within the memory horizon, oldest first, at most `maxRemembered`. */
  readonly offences: { readonly [E in PenaltyEvent]?: readonly number[] };
  /** Lifetime count of each event applied (capped rewards and duplicates change nothing, so are not counted). */
  readonly counts: { readonly [E in ScoreEvent]?: number };
  /** Keys of the last evidence applied (deduplication), oldest first, at most 64. */
  readonly seen?: readonly string[];
  /** The last change: its event, the change to the unrounded score, when, and the evidence reference. */
  readonly last?: { readonly event: ScoreEvent; readonly delta: number; readonly at: number; readonly ref?: string };
}

const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const count = z.number().int().min(0);
const partialOf = <K extends string, S extends z.ZodType>(names: readonly K[], value: S) =>
  z.strictObject(Object.fromEntries(names.map((name) => [name, value.optional()])) as { [P in K]: z.ZodOptional<S> });

const stateSchema = z.strictObject({
  schema: z.literal(1),
  did: z.string().min(1).max(512),
  version: count,
  score: z.number().finite(),
  at: time,
  since: time,
  rewards: partialOf(REWARD_EVENT_NAMES, z.strictObject({ window: time, gained: z.number().min(0).finite() })),
  offences: partialOf(PENALTY_EVENT_NAMES, z.array(time).max(1024)),
  counts: partialOf([...REWARD_EVENT_NAMES, ...PENALTY_EVENT_NAMES], count),
  seen: z.array(z.string().max(256)).max(1024).optional(),
  last: z
    .strictObject({
      event: z.enum([...REWARD_EVENT_NAMES, ...PENALTY_EVENT_NAMES] as [ScoreEvent, ...ScoreEvent[]]),
      delta: z.number().finite(),
      at: time,
      ref: z.string().max(1024).optional(),
    })
    .optional(),
});

export type ParseStateResult = { ok: true; state: TrustState } | { ok: false; field: string; detail: string };

/**
 * Checks a value read back from storage (after JSON.parse). Never throws:
 * a corrupt entry is reported, and the caller decides (log, start afresh).
 */
export function parseTrustState(value: unknown): ParseStateResult {
  const parsed = stateSchema.safeParse(value);
  if (parsed.success) return { ok: true, state: parsed.data as TrustState };
  const issue = parsed.error.issues[0]!;
  return { ok: false, field: issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.'), detail: issue.message };
}
