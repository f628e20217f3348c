/** A token-bucket limit: `count` frames per `perMs`, with bursts up to `burst` (default `count`). */
export interface RateLimit {
  readonly count: number;
  readonly perMs: number;
  readonly burst?: number;
}

export interface RateLimiterInit extends RateLimit {
  /** Most senders tracked at once; default 10,000. Beyond it the least recently seen are evicted. */
  maxSenders?: number;
}

/** How many of the least recently seen buckets eviction inspects for a full (idle) one. */
const EVICTION_SCAN = 8;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets per sender with bounded memory. Time is passed in by the
 * caller (ms, any monotone-ish clock: a clock that steps back refills nothing).
 *
 * Memory: at most `maxSenders` buckets. When full, eviction prefers a bucket
 * that has refilled to `burst`, because a full bucket behaves exactly like a
 * sender never seen, so forgetting it loses nothing; only when the oldest few
 * are all partly drained does the least recently seen one go (and that sender
 * starts again with a full burst: an attacker needs `maxSenders` fresh
 * identities busy at once to reset one sender's budget).
 */
export class RateLimiter {
  readonly maxSenders: number;
  private readonly burst: number;
  private readonly perMsRate: number;
  /** Insertion order is recency: a touched bucket is deleted and re-inserted. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(init: RateLimiterInit) {
    this.burst = init.burst ?? init.count;
    this.perMsRate = init.count / init.perMs;
    this.maxSenders = init.maxSenders ?? 10_000;
  }

  /** Number of senders tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token for `sender` at time `now`; false if its bucket is empty. */
  take(sender: string, now: number): boolean {
    const bucket = this.buckets.get(sender);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxSenders) this.evict(now);
      this.buckets.set(sender, { tokens: this.burst - 1, at: now });
      return true;
    }
    this.buckets.delete(sender);
    this.buckets.set(sender, bucket);
    this.refill(bucket, now);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Tokens `sender` has at `now` (the burst for a sender not tracked). */
  tokens(sender: string, now: number): number {
    const bucket = this.buckets.get(sender);
    if (bucket === undefined) return this.burst;
    const elapsed = Math.max(0, now - bucket.at);
    return Math.min(this.burst, bucket.tokens + elapsed * this.perMsRate);
  }

  private refill(bucket: Bucket, now: number): void {
    const elapsed = now - bucket.at;
    if (elapsed > 0) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + elapsed * this.perMsRate);
      bucket.at = now;
    }
  }

  private evict(now: number): void {
    let scanned = 0;
    for (const [sender, bucket] of this.buckets) {
      if (this.tokensOf(bucket, now) >= this.burst) {
        this.buckets.delete(sender);
        return;
      }
      if (++scanned >= EVICTION_SCAN) break;
    }
    this.buckets.delete(this.buckets.keys().next().value!);
  }

  private tokensOf(bucket: Bucket, now: number): number {
    return bucket.tokens + Math.max(0, now - bucket.at) * this.perMsRate;
  }
}
