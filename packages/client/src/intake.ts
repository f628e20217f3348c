import { HEADER_LENGTH } from '@trustmesh/protocol';
import type { ExtensionSink } from './inbound.ts';

// Node's latin1 decoder called on the frame itself: no Buffer view per frame.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

/** The header key of a frame (bytes 1..33) as a latin1 string: the key id known peers are looked up by. */
export const headerKeyId = (frame: Uint8Array): string => latin1Slice.call(frame, 1, 33);

export interface IntakeLimits {
  /** Frames from unknown keys waiting for verification; past it they are refused `overloaded` unread. Default 1024. */
  maxUnknownQueued: number;
  /** Frames from known keys waiting; default 16,384. */
  maxKnownQueued: number;
  /** Verifications per second one unknown key may cost (token bucket, burst = one second's worth); default 50. */
  unknownKeyRate: number;
  /**
   * Verifications per second all unknown keys together may cost, shared by every
   * agent of the process that keeps the default (fresh keys defeat a per-key
   * budget); default 2,000, about 15 % of a core. Past it, frames under unknown
   * keys are refused `overloaded` unread.
   */
  unknownRate: number;
  /** Unknown keys with a budget tracked at once (oldest forgotten first); default 4096. */
  maxTrackedKeys: number;
  /** Longest run of verification work before yielding to the event loop, ms; default 20. */
  sliceMs: number;
}

export const DEFAULT_INTAKE_LIMITS: IntakeLimits = {
  maxUnknownQueued: 1024,
  maxKnownQueued: 16_384,
  unknownKeyRate: 50,
  unknownRate: 2_000,
  maxTrackedKeys: 4096,
  sliceMs: 5,
};

/** A token bucket (burst = one second's worth). */
class Bucket {
  private tokens: number;
  private at: number;
  constructor(
    private readonly rate: number,
    now: number,
  ) {
    this.tokens = rate;
    this.at = now;
  }
  take(now: number): boolean {
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The process-wide budget of the default rate: every intake of the process draws from it. */
let sharedUnknown: Bucket | undefined;

interface Item {
  subject: string;
  data: Uint8Array;
  sink: ExtensionSink | undefined;
}

/**
 * The door before the signature check. Frames wait in two queues, by whether
 * the header key belongs to a known peer; known peers are verified first, and
 * unknown keys share a small queue and a per-key budget. A flood of frames with
 * fresh keys (about 2 µs each for the attacker, a full Ed25519 verify for the
 * receiver) then costs the receiver a map lookup per frame past the bounds,
 * and cannot starve a known peer. Work runs in slices so NATS keeps reading.
 */
export class Intake {
  private known: Item[] = [];
  private unknown: Item[] = [];
  private knownHead = 0;
  private unknownHead = 0;
  private scheduled = false;
  private readonly budgets = new Map<string, { tokens: number; at: number }>();
  private readonly unknownBudget: Bucket;

  constructor(
    private readonly process: (subject: string, data: Uint8Array, sink: ExtensionSink | undefined) => void,
    private readonly drop: (subject: string, data: Uint8Array, detail: string) => void,
    private readonly isKnownKey: (keyId: string) => boolean,
    private readonly limits: IntakeLimits = DEFAULT_INTAKE_LIMITS,
    private readonly now: () => number = Date.now,
    /** Whether the next stage takes a frame now (a verification pool with room); false holds the queue until {@link resume}. */
    private readonly gate?: () => boolean,
  ) {
    if (limits.unknownRate === DEFAULT_INTAKE_LIMITS.unknownRate && now === Date.now) {
      sharedUnknown ??= new Bucket(limits.unknownRate, now());
      this.unknownBudget = sharedUnknown;
    } else {
      this.unknownBudget = new Bucket(limits.unknownRate, now());
    }
  }

  get queued(): number {
    return this.known.length - this.knownHead + this.unknown.length - this.unknownHead;
  }

  push(subject: string, data: Uint8Array, sink?: ExtensionSink): void {
    const keyId = data.length >= HEADER_LENGTH ? headerKeyId(data) : '';
    if (keyId !== '' && this.isKnownKey(keyId)) {
      if (this.known.length - this.knownHead >= this.limits.maxKnownQueued) {
        this.drop(subject, data, 'verification queue for known peers is full');
        return;
      }
      this.known.push({ subject, data, sink });
    } else {
      if (this.unknown.length - this.unknownHead >= this.limits.maxUnknownQueued) {
        this.drop(subject, data, 'verification queue for unknown keys is full');
        return;
      }
      if (!this.spend(keyId)) {
        this.drop(subject, data, 'verification budget of this unknown key is spent');
        return;
      }
      if (!this.unknownBudget.take(this.now())) {
        this.drop(subject, data, 'verification budget for unknown keys is spent');
        return;
      }
      // A copy: attacker frames must not pin the transport's read buffers while they wait.
      this.unknown.push({ subject, data: Uint8Array.prototype.slice.call(data) as Uint8Array, sink });
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private spend(keyId: string): boolean {
    const now = this.now();
    const rate = this.limits.unknownKeyRate;
    let budget = this.budgets.get(keyId);
    if (budget === undefined) {
      if (this.budgets.size >= this.limits.maxTrackedKeys) this.budgets.delete(this.budgets.keys().next().value!);
      budget = { tokens: rate, at: now };
      this.budgets.set(keyId, budget);
    } else {
      budget.tokens = Math.min(rate, budget.tokens + ((now - budget.at) * rate) / 1000);
      budget.at = now;
    }
    if (budget.tokens < 1) return false;
    budget.tokens -= 1;
    return true;
  }

  /** The next stage has room again: drain what waits. */
  resume(): void {
    if (this.queued > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    const deadline = performance.now() + this.limits.sliceMs;
    let n = 0;
    while (true) {
      if (this.gate !== undefined && !this.gate()) {
        this.compact();
        return; // held: resume() drains the rest
      }
      let item: Item | undefined;
      if (this.knownHead < this.known.length) item = this.known[this.knownHead++];
      else if (this.unknownHead < this.unknown.length) item = this.unknown[this.unknownHead++];
      else break;
      this.process(item!.subject, item!.data, item!.sink);
      // Checking the clock costs too; every 16 frames is often enough.
      if ((++n & 15) === 0 && performance.now() > deadline) break;
    }
    this.compact();
    if (this.queued > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private compact(): void {
    if (this.knownHead === this.known.length) {
      this.known = [];
      this.knownHead = 0;
    } else if (this.knownHead > 1024) {
      this.known = this.known.slice(this.knownHead);
      this.knownHead = 0;
    }
    if (this.unknownHead === this.unknown.length) {
      this.unknown = [];
      this.unknownHead = 0;
    } else if (this.unknownHead > 1024) {
      this.unknown = this.unknown.slice(this.unknownHead);
      this.unknownHead = 0;
    }
  }
}
