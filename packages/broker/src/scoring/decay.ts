/**
 * Decay toward the baseline in closed form (docs/trust.md §Decay):
 *
 *   score(t) = b + (score(t0) − b) · 2^(−(t − t0) / h)
 *
 * with h the half-life above the baseline when score(t0) > b, and the one
 * below it when score(t0) < b. Decay alone never crosses the baseline, so
 * the half-life in use never changes along the way, and
 *   decay(decay(s, t0, t1), t1, t2) = decay(s, t0, t2):
 * the result does not depend on how often it is computed.
 */
export interface DecayParams {
  readonly baseline: number;
  readonly halfLifeAboveMs: number;
  readonly halfLifeBelowMs: number;
}

/** The score at `now` of a score `score` that held at `at`. A clock before `at` decays nothing. */
export function decayed(score: number, at: number, now: number, p: DecayParams): number {
  const elapsed = now - at;
  if (!(elapsed > 0) || score === p.baseline) return score;
  const halfLife = score > p.baseline ? p.halfLifeAboveMs : p.halfLifeBelowMs;
  return p.baseline + (score - p.baseline) * 2 ** (-elapsed / halfLife);
}

/**
 * When decay alone brings the unrounded score from `score` (at `at`) to
 * `target`; undefined if it never does (target not strictly between the
 * baseline and the score).
 */
export function timeToReach(score: number, at: number, target: number, p: DecayParams): number | undefined {
  const from = score - p.baseline;
  const to = target - p.baseline;
  if (from === 0 || to === 0 || Math.sign(from) !== Math.sign(to) || Math.abs(to) >= Math.abs(from)) return undefined;
  const halfLife = from > 0 ? p.halfLifeAboveMs : p.halfLifeBelowMs;
  return at + halfLife * Math.log2(from / to);
}
