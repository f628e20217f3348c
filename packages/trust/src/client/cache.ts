import { DEFAULT_TIER_LADDER, NEW_AGENT_SCORE, type Tier, type TierLadder, tierOf } from '../tiers.ts';
import type { TrustUpdate } from './wire.ts';

/**
 * Scores as a client knows them: the newest broker update per DID, by version.
 * A DID the cache has no update for is at the baseline. Bounded: past
 * `maxEntries`, the entry with the score closest to the baseline goes first
 * among a few of the oldest (forgetting a baseline score loses nothing).
 */
export class ScoreCache {
  private readonly entries = new Map<string, TrustUpdate>();
  /** Updates applied, and updates ignored as not newer than the one held. */
  readonly stats = { applied: 0, stale: 0 };

  constructor(
    private readonly ladder: TierLadder = DEFAULT_TIER_LADDER,
    private readonly maxEntries = 100_000,
  ) {}

  /** Applies `update` if it is newer than what the cache holds for its DID; true if applied. */
  apply(update: TrustUpdate): boolean {
    const held = this.entries.get(update.did);
    if (held !== undefined && held.version >= update.version) {
      this.stats.stale++;
      return false;
    }
    if (held === undefined && this.entries.size >= this.maxEntries) this.evict();
    this.entries.set(update.did, update);
    this.stats.applied++;
    return true;
  }

  score(did: string): number {
    return this.entries.get(did)?.score ?? NEW_AGENT_SCORE;
  }

  tier(did: string): Tier {
    return tierOf(this.score(did), this.ladder);
  }

  get(did: string): TrustUpdate | undefined {
    return this.entries.get(did);
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(): void {
    let victim: string | undefined;
    let best = Number.POSITIVE_INFINITY;
    let looked = 0;
    for (const [did, update] of this.entries) {
      const distance = Math.abs(update.score - NEW_AGENT_SCORE);
      if (distance < best) {
        best = distance;
        victim = did;
      }
      if (++looked >= 8) break;
    }
    if (victim !== undefined) this.entries.delete(victim);
  }
}
