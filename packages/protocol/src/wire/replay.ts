import { InvalidArgumentError } from '../errors.ts';

export const DEFAULT_WINDOW_MS = 30_000;
export const DEFAULT_MAX_REPLAY_ENTRIES = 250_000;
/** Share of the memory that signers not known to the receiver may hold together. */
export const DEFAULT_UNKNOWN_SHARE = 0.25;
const BUCKET_MS = 1_000;

export interface ReplayGuardInit {
  /** Accepted clock skew either way; default 30 s. */
  windowMs?: number;
  /** Most (signer, id) pairs remembered at once; default 250,000 (about 40 MB at worst). */
  maxEntries?: number;
  /**
   * Share of `maxEntries` that all unknown signers together may hold (default
   * 0.25); the rest is reserved for known peers, so fresh keys cannot push them out.
   */
  unknownShare?: number;
}

export type ReplayVerdict = 'fresh' | 'replay' | 'equivocation' | 'stale';

interface SignerMemory {
  readonly signer: string;
  /** id -> fingerprint of the frame accepted with it (tells a replay from equivocation). */
  readonly ids: Map<string, string>;
  /** iat bucket -> ids first seen in it. */
  readonly buckets: Map<number, string[]>;
  /** Frames at or below this iat are stale for this signer (-1: none). */
  floor: number;
  known: boolean;
}

/**
 * Remembers accepted (signer, id) pairs until their `iat` leaves the window,
 * after which the time check refuses them anyway (docs/protocol.md §7, rules 11–13).
 *
 * Memory is bounded and accounted **per signer**, so one key's flood costs only
 * that key: when memory must be freed, the signer holding the most entries in
 * its pool forgets its oldest second of ids and raises its **own** floor; a
 * frame of that signer at or below the floor is then `stale`. Known peers
 * (as the receiver says with `known`) and unknown signers have separate pools;
 * unknown signers may hold `unknownShare` of the memory together. When that pool
 * is full of many small holders (fresh keys, one frame each), the longest-held
 * unknown signer is forgotten whole and a shared floor for unknown signers rises
 * to its newest `iat`: a flood of fresh keys can make other unknown signers'
 * frames stale, never a known peer's, and never opens a gap for a replay.
 *
 * The same id with another fingerprint (another frame signed with the same id)
 * is `equivocation`: only the signer can produce it.
 */
export class ReplayGuard {
  readonly windowMs: number;
  readonly maxEntries: number;
  private readonly unknownLimit: number;
  private readonly signers = new Map<string, SignerMemory>();
  /** iat bucket -> signers with ids in it, for expiry without a scan of every signer. */
  private readonly expiry = new Map<number, Set<SignerMemory>>();
  private readonly held = { known: 0, unknown: 0 };
  /** Unknown signers in the order their memory was created: the first is forgotten first. */
  private readonly unknownOrder = new Map<string, SignerMemory>();
  private readonly heavy: { known?: SignerMemory | undefined; unknown?: SignerMemory | undefined } = {};
  private unknownFloor = -1;
  /** Empty memories kept for their floor. */
  private readonly floored = new Set<SignerMemory>();
  /** iat below which everything is stale by the window (as of the last expiry). */
  private expiredBelow = -Infinity;
  private lastExpiryBucket = -Infinity;

  constructor(init: ReplayGuardInit = {}) {
    this.windowMs = init.windowMs ?? DEFAULT_WINDOW_MS;
    this.maxEntries = init.maxEntries ?? DEFAULT_MAX_REPLAY_ENTRIES;
    const share = init.unknownShare ?? DEFAULT_UNKNOWN_SHARE;
    if (!Number.isFinite(this.windowMs) || this.windowMs <= 0) throw new InvalidArgumentError('windowMs must be > 0');
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new InvalidArgumentError('maxEntries must be an integer >= 1');
    if (!(share > 0 && share <= 1)) throw new InvalidArgumentError('unknownShare must be in (0, 1]');
    this.unknownLimit = Math.max(1, Math.floor(this.maxEntries * share));
  }

  /** Entries remembered, all signers together. */
  get size(): number {
    return this.held.known + this.held.unknown;
  }

  /** Signers with entries. */
  get signerCount(): number {
    return this.signers.size;
  }

  /** The floor that applies to `signer`'s frames (-1 when none). */
  floorOf(signer: string, known = false): number {
    const memory = this.signers.get(signer);
    if (memory !== undefined) return memory.floor;
    return known ? -1 : this.unknownFloor;
  }

  /** Entries `signer` holds. */
  heldBy(signer: string): number {
    return this.signers.get(signer)?.ids.size ?? 0;
  }

  /**
   * Records (signer, id) if it is new. `iat` must already be inside the window:
   * call only for frames that passed every other check. `fingerprint` is any
   * string that differs between two different frames (e.g. a signature prefix).
   */
  check(signer: string, id: string, fingerprint: string, iat: number, now: number, known = false): ReplayVerdict {
    this.expire(now);
    let memory = this.signers.get(signer);
    if (memory === undefined) {
      // A signer without memory may have been forgotten under pressure: the shared floor covers it.
      if (!known && iat <= this.unknownFloor) return 'stale';
    } else {
      if (iat <= memory.floor) return 'stale';
      const seen = memory.ids.get(id);
      if (seen !== undefined) return seen === fingerprint ? 'replay' : 'equivocation';
      if (known && !memory.known) this.promote(memory);
    }
    const pool = known || memory?.known === true ? 'known' : 'unknown';
    const limit = pool === 'known' ? this.maxEntries - this.held.unknown : this.unknownLimit;
    while (this.held[pool] >= limit && this.held[pool] > 0) this.makeRoom(pool);
    // Making room may have forgotten this signer, or raised its floor over this iat.
    memory = this.signers.get(signer);
    if (memory === undefined) {
      if (pool === 'unknown' && iat <= this.unknownFloor) return 'stale';
      memory = { signer, ids: new Map(), buckets: new Map(), floor: pool === 'known' ? -1 : this.unknownFloor, known: pool === 'known' };
      this.signers.set(signer, memory);
      if (pool === 'unknown') this.unknownOrder.set(signer, memory);
    } else if (iat <= memory.floor) {
      return 'stale';
    }
    memory.ids.set(id, fingerprint);
    const bucket = Math.floor(iat / BUCKET_MS);
    let ids = memory.buckets.get(bucket);
    if (ids === undefined) {
      memory.buckets.set(bucket, (ids = []));
      let holders = this.expiry.get(bucket);
      if (holders === undefined) this.expiry.set(bucket, (holders = new Set()));
      holders.add(memory);
    }
    ids.push(id);
    this.held[pool]++;
    const heavy = this.heavy[pool];
    if (heavy === undefined || heavy.ids.size < memory.ids.size) this.heavy[pool] = memory;
    return 'fresh';
  }

  /**
   * Single-signer form of {@link check} (every key its own id, one signer):
   * kept for callers that track one stream of ids.
   */
  checkAndRemember(key: string, iat: number, now: number): ReplayVerdict {
    const verdict = this.check('', key, '', iat, now, true);
    return verdict === 'equivocation' ? 'replay' : verdict;
  }

  /** The floor of the single-signer form ({@link checkAndRemember}). */
  get floor(): number {
    return this.floorOf('', true);
  }

  private promote(memory: SignerMemory): void {
    memory.known = true;
    this.unknownOrder.delete(memory.signer);
    this.held.unknown -= memory.ids.size;
    this.held.known += memory.ids.size;
  }

  private expire(now: number): void {
    // Bucket b holds iat in [b*B, (b+1)*B); all of it is stale once (b+1)*B - 1 < now - window.
    const limit = now - this.windowMs;
    const current = Math.floor(limit / BUCKET_MS);
    if (current === this.lastExpiryBucket) return; // nothing new can have expired within one bucket
    this.lastExpiryBucket = current;
    this.expiredBelow = limit;
    for (const memory of this.floored) {
      if (memory.ids.size > 0) this.floored.delete(memory);
      else if (memory.floor < limit) this.drop(memory);
    }
    for (const [bucket, holders] of this.expiry) {
      if ((bucket + 1) * BUCKET_MS - 1 >= limit) continue;
      this.expiry.delete(bucket);
      for (const memory of holders) this.forgetBucket(memory, bucket);
    }
  }

  /** Forgets one bucket of one signer; returns how many ids went. */
  private forgetBucket(memory: SignerMemory, bucket: number): number {
    const ids = memory.buckets.get(bucket);
    if (ids === undefined) return 0;
    memory.buckets.delete(bucket);
    for (const id of ids) memory.ids.delete(id);
    this.held[memory.known ? 'known' : 'unknown'] -= ids.length;
    if (memory.ids.size === 0 && this.signers.get(memory.signer) === memory) {
      // An empty memory whose floor still matters stays until the window passes the floor.
      if (memory.floor >= this.expiredBelow) this.floored.add(memory);
      else this.drop(memory);
    }
    return ids.length;
  }

  private drop(memory: SignerMemory): void {
    this.signers.delete(memory.signer);
    this.unknownOrder.delete(memory.signer);
    this.floored.delete(memory);
  }

  private makeRoom(pool: 'known' | 'unknown'): void {
    const heavy = this.heaviest(pool);
    // A big holder gives up its oldest second and raises only its own floor. An
    // unknown pool of many small holders (fresh keys, a frame each) instead
    // forgets its longest-held signer whole.
    if (heavy !== undefined && (pool === 'known' || heavy.ids.size * 16 >= this.unknownLimit)) {
      let oldest = Infinity;
      for (const bucket of heavy.buckets.keys()) if (bucket < oldest) oldest = bucket;
      heavy.floor = Math.max(heavy.floor, (oldest + 1) * BUCKET_MS - 1);
      this.forgetBucket(heavy, oldest);
      // Forgotten whole: a floor of an unknown signer must outlive its memory.
      if (!heavy.known && !this.signers.has(heavy.signer)) this.unknownFloor = Math.max(this.unknownFloor, heavy.floor);
      return;
    }
    const first = this.unknownOrder.values().next().value;
    if (first !== undefined) this.forgetSigner(first);
  }

  /** The pool's biggest holder: a pointer kept on insert, a scan only when it went stale. */
  private heaviest(pool: 'known' | 'unknown'): SignerMemory | undefined {
    const pointer = this.heavy[pool];
    if (pointer !== undefined && this.signers.get(pointer.signer) === pointer && pointer.known === (pool === 'known')) return pointer;
    let biggest: SignerMemory | undefined;
    for (const memory of this.signers.values()) {
      if (memory.known === (pool === 'known') && (biggest === undefined || memory.ids.size > biggest.ids.size)) biggest = memory;
    }
    this.heavy[pool] = biggest;
    return biggest;
  }

  private forgetSigner(memory: SignerMemory): void {
    let newest = memory.floor;
    for (const bucket of [...memory.buckets.keys()]) {
      newest = Math.max(newest, (bucket + 1) * BUCKET_MS - 1);
      this.forgetBucket(memory, bucket);
    }
    this.unknownFloor = Math.max(this.unknownFloor, newest);
    this.drop(memory);
  }
}
