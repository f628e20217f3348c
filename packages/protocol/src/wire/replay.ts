import { InvalidArgumentError } from '../errors.ts';

export const DEFAULT_WINDOW_MS = 30_000;
export const DEFAULT_MAX_REPLAY_ENTRIES = 250_000;
const BUCKET_MS = 1_000;

export interface ReplayGuardInit {
  /** Accepted clock skew either way; default 30 s. */
  windowMs?: number;
  /** Most (iss, id) pairs remembered at once; default 250,000 (about 40 MB at worst). */
  maxEntries?: number;
}

export type ReplayVerdict = 'fresh' | 'replay' | 'stale';

/**
 * Remembers accepted (signer, id) pairs until their `iat` leaves the window,
 * after which the time check refuses them anyway.
 *
 * Memory is bounded by `maxEntries`. When full, the entries with the oldest
 * `iat` are forgotten and a floor is raised to their `iat`: any frame at or
 * below the floor is then answered `stale`. A flood of unique ids therefore
 * narrows the acceptance window instead of opening a gap for replays: an id is
 * forgotten only once no frame with its `iat` can be accepted again.
 */
export class ReplayGuard {
  readonly windowMs: number;
  readonly maxEntries: number;
  // iat bucket (ms / BUCKET_MS) -> keys first seen in it. Map iteration order is
  // insertion order, not numeric, so the oldest bucket is found by a scan of
  // the (few dozen) bucket keys, not assumed.
  private readonly buckets = new Map<number, Set<string>>();
  private readonly seen = new Set<string>();
  private floorMs = -1;
  private lastExpiryBucket = -Infinity;

  constructor(init: ReplayGuardInit = {}) {
    this.windowMs = init.windowMs ?? DEFAULT_WINDOW_MS;
    this.maxEntries = init.maxEntries ?? DEFAULT_MAX_REPLAY_ENTRIES;
    if (!Number.isFinite(this.windowMs) || this.windowMs <= 0) throw new InvalidArgumentError('windowMs must be > 0');
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new InvalidArgumentError('maxEntries must be an integer >= 1');
  }

  get size(): number {
    return this.seen.size;
  }

  /** The lowest iat still accepted because of evictions (-1 when none happened). */
  get floor(): number {
    return this.floorMs;
  }

  /**
   * Records `key` (signer bytes + id, as a string) if it is new. `iat` must
   * already be inside the window; call only for frames that passed every other check.
   */
  checkAndRemember(key: string, iat: number, now: number): ReplayVerdict {
    this.expire(now);
    if (iat <= this.floorMs) return 'stale';
    if (this.seen.has(key)) return 'replay';
    while (this.seen.size >= this.maxEntries) this.evictOldest();
    if (iat <= this.floorMs) return 'stale';
    this.seen.add(key);
    const bucket = Math.floor(iat / BUCKET_MS);
    let set = this.buckets.get(bucket);
    if (set === undefined) this.buckets.set(bucket, (set = new Set()));
    set.add(key);
    return 'fresh';
  }

  private expire(now: number): void {
    // Bucket b holds iat in [b*B, (b+1)*B); all of it is stale once (b+1)*B - 1 < now - window.
    const limit = now - this.windowMs;
    const current = Math.floor(limit / BUCKET_MS);
    if (current === this.lastExpiryBucket) return; // nothing new can have expired within one bucket
    this.lastExpiryBucket = current;
    for (const [bucket, keys] of this.buckets) {
      if ((bucket + 1) * BUCKET_MS - 1 < limit) {
        for (const k of keys) this.seen.delete(k);
        this.buckets.delete(bucket);
      }
    }
  }

  private evictOldest(): void {
    let oldest = Infinity;
    for (const bucket of this.buckets.keys()) if (bucket < oldest) oldest = bucket;
    const keys = this.buckets.get(oldest);
    if (keys === undefined) return;
    for (const k of keys) this.seen.delete(k);
    this.buckets.delete(oldest);
    this.floorMs = Math.max(this.floorMs, (oldest + 1) * BUCKET_MS - 1);
  }
}
