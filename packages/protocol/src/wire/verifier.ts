import type { RejectReason } from '../codes.ts';
import { DEFAULT_MAX_FRAME_BYTES, HEADER_LENGTH, verifyFrameSignature } from './frame.ts';
import { DEFAULT_WINDOW_MS, ReplayGuard, type ReplayGuardInit } from './replay.ts';
import { blameFor, type Prechecked, type Rejected, StatelessVerifier, type Verified } from './stateless.ts';

/** A verified frame with its parsed route and signer, or a rejection with its reason and blame. */
export type VerifyResult = Verified | Rejected;

export interface VerifierInit extends ReplayGuardInit {
  /** Frames larger than this are refused unread; default 1 MiB. */
  maxFrameBytes?: number;
  /** Ed25519 implementation; default `node`. */
  backend?: 'node' | 'noble';
  /** Clock in ms since the epoch; injectable for tests. */
  now?: () => number;
  /** The receiving agent's DID: frames with another `aud` are refused. */
  self?: string;
  /**
   * Frames issued before this time (ms) are refused as `stale`: a receiver
   * that restarted has lost its replay memory, so it must not accept what it may
   * have accepted before (docs/protocol.md §7, rule 9). Default: no bound.
   */
  notBefore?: number;
  /** Whether a signer (by its agent id) is a known peer: known peers have their own share of replay memory. */
  isKnown?: (agentId: string) => boolean;
  /** Exact duplicates remembered (by signature, checked by hash): default 4096. */
  duplicateMemory?: number;
}

export interface VerifyContext {
  /** The NATS subject the frame arrived on. */
  subject: string;
}

/**
 * Every receiver rule of docs/protocol.md §7, in order: the stateless stage
 * ({@link StatelessVerifier}), then the receiver's own state: audience, time
 * window, restart bound, replay and equivocation. An exact duplicate of a frame
 * this verifier already refused for its signature or already accepted is
 * answered from memory, before any signature work.
 * Never throws on frame bytes.
 */
export class FrameVerifier {
  readonly maxFrameBytes: number;
  readonly windowMs: number;
  readonly replay: ReplayGuard;
  readonly stateless: StatelessVerifier;
  private readonly now: () => number;
  private readonly self: string | undefined;
  private readonly notBefore: number;
  private readonly isKnown: (agentId: string) => boolean;
  private readonly duplicates: DuplicateMemory;

  constructor(init: VerifierInit = {}) {
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.windowMs = init.windowMs ?? DEFAULT_WINDOW_MS;
    this.replay = new ReplayGuard(init);
    this.now = init.now ?? Date.now;
    this.self = init.self;
    this.notBefore = init.notBefore ?? -1;
    this.isKnown = init.isKnown ?? (() => false);
    this.duplicates = new DuplicateMemory(init.duplicateMemory ?? 4096);
    this.stateless = new StatelessVerifier({
      maxFrameBytes: this.maxFrameBytes,
      ...(init.backend !== undefined && { backend: init.backend }),
    });
  }

  verify(frame: Uint8Array, context: VerifyContext): VerifyResult {
    const pending = this.precheck(frame, context);
    if (!pending.ok) return pending;
    return this.complete(pending, verifyFrameSignature(frame, pending.signer));
  }

  /**
   * The checks before the signature: the exact-duplicate memory, then
   * {@link StatelessVerifier.precheck}. `ok` means the frame's signature must
   * be checked next, here ({@link verify}) or by a verification pool, and the
   * result passed to {@link complete} with the same `Pending`. Pendings of one
   * sender must be completed in the order they were prechecked.
   */
  precheck(frame: Uint8Array, context: VerifyContext): Pending | Rejected {
    const subject = context.subject;
    let sigKey: string | undefined;
    if (frame instanceof Uint8Array && frame.length <= this.maxFrameBytes && frame.length >= HEADER_LENGTH) {
      sigKey = signatureKey(frame);
      const seen = this.duplicates.get(frame, subject, sigKey);
      if (seen !== undefined) return this.copyOf(seen);
    }
    const pre = this.stateless.precheck(frame, subject);
    if (!pre.ok) return pre;
    return { ok: true, frame, subject, route: pre.route, signer: pre.signer, sigKey: sigKey! };
  }

  /** The rest of the checks for a frame whose signature was checked: body, audience, time, replay. */
  complete(pending: Pending, signatureValid: boolean): VerifyResult {
    const { frame, subject } = pending;
    const result = this.stateless.complete(frame, subject, pending, signatureValid);
    if (!result.ok) {
      if (result.reason === 'bad_signature') {
        this.duplicates.remember(Uint8Array.prototype.slice.call(frame) as Uint8Array, subject, { accepted: undefined }, pending.sigKey);
      }
      return result;
    }
    const body = result.frame;
    if (body.aud !== undefined && this.self !== undefined && body.aud !== this.self) {
      return refused(body.iss, 'audience_mismatch', `addressed to ${body.aud.slice(0, 80)}`);
    }
    const now = this.now();
    if (body.iat < now - this.windowMs) return refused(body.iss, 'stale', `iat ${now - body.iat} ms old, window ${this.windowMs} ms`);
    if (body.iat > now + this.windowMs) return refused(body.iss, 'future', `iat ${body.iat - now} ms ahead, window ${this.windowMs} ms`);
    if (body.iat < this.notBefore) return refused(body.iss, 'stale', 'issued before this receiver started (its replay memory is younger)');
    // The fingerprint is the signature's first 16 bytes, as a string.
    const fingerprint = pending.sigKey.slice(0, 16);
    const verdict = this.replay.check(
      result.signer.keyId,
      latin1Slice.call(body.id, 0, body.id.length),
      fingerprint,
      body.iat,
      now,
      this.isKnown(result.signer.agentId),
    );
    if (verdict === 'replay') return refused(body.iss, 'replay', '(iss, id) already accepted');
    if (verdict === 'equivocation') return refused(body.iss, 'equivocation', 'another frame with this (iss, id) was already accepted');
    if (verdict === 'stale') return refused(body.iss, 'stale', "iat at or below the signer's replay floor, raised under load");
    this.duplicates.remember(
      body.raw,
      subject,
      { accepted: { iat: body.iat, keyId: result.signer.keyId, agentId: result.signer.agentId, did: body.iss } },
      pending.sigKey,
    );
    return result;
  }

  /** The same outcome the full checks would give a copy of a frame seen before, without a signature check. */
  private copyOf(seen: Seen): Rejected {
    if (seen.accepted === undefined)
      return { ok: false, reason: 'bad_signature', detail: 'copy of a frame whose signature did not verify', blame: 'publisher' };
    const { iat, keyId, agentId, did } = seen.accepted;
    const now = this.now();
    const stale = iat < now - this.windowMs || iat <= this.replay.floorOf(keyId, this.isKnown(agentId));
    return stale
      ? { ok: false, reason: 'stale', detail: 'copy of an accepted frame, now stale', blame: 'publisher', signedBy: did }
      : { ok: false, reason: 'replay', detail: 'copy of a frame already accepted', blame: 'publisher', signedBy: did };
  }
}

/** A rejection that the verified signer is named in (its blame by the rule of §8.1). */
function refused(signedBy: string, reason: RejectReason, detail: string): Rejected {
  return { ok: false, reason, detail, blame: blameFor(reason, true), signedBy };
}

/** A frame past {@link FrameVerifier.precheck}, waiting for its signature check. */
export interface Pending extends Prechecked {
  readonly frame: Uint8Array;
  readonly subject: string;
  /** The signature as a string: the duplicate memory's key. */
  readonly sigKey: string;
}

/**
 * Frames seen, keyed by their signature and confirmed byte for byte (and by
 * the subject they arrived on): a copy is answered from memory, without a
 * signature check, with the reason the full checks would give (`bad_signature`,
 * or `replay` / `stale` for a copy of an accepted frame, by its remembered
 * `iat`). A re-routed copy is not a copy here (another subject): the subject
 * rule answers it, with its own reason. Bounded in entries and in bytes held;
 * the oldest entry goes first, and frames over 64 KiB are not remembered.
 */
/** What the first copy of a frame was: refused for its signature, or accepted (with what decides staleness later). */
interface Seen {
  accepted: { iat: number; keyId: string; agentId: string; did: string } | undefined;
}

class DuplicateMemory {
  private readonly entries = new Map<string, { frame: Uint8Array; subject: string; seen: Seen }>();
  private bytes = 0;
  private static readonly MAX_FRAME = 64 * 1024;
  private readonly maxBytes: number;

  constructor(private readonly limit: number) {
    this.maxBytes = Math.max(1, limit) * 2048;
  }

  get(frame: Uint8Array, subject: string, key: string): Seen | undefined {
    if (this.entries.size === 0) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined || entry.subject !== subject || entry.frame.length !== frame.length) return undefined;
    return Buffer.from(entry.frame.buffer, entry.frame.byteOffset, entry.frame.length).equals(frame) ? entry.seen : undefined;
  }

  /** `frame` is kept by reference: pass a copy the caller will not change (an opened frame's `raw`). */
  remember(frame: Uint8Array, subject: string, seen: Seen, key: string = signatureKey(frame)): void {
    if (!(frame instanceof Uint8Array) || frame.length < HEADER_LENGTH || frame.length > DuplicateMemory.MAX_FRAME || this.limit < 1)
      return;
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.entries.delete(key);
      this.bytes -= old.frame.length;
    }
    while (this.entries.size > 0 && (this.entries.size >= this.limit || this.bytes + frame.length > this.maxBytes)) {
      const oldestKey = this.entries.keys().next().value!;
      this.bytes -= this.entries.get(oldestKey)!.frame.length;
      this.entries.delete(oldestKey);
    }
    this.entries.set(key, { frame, subject, seen });
    this.bytes += frame.length;
  }
}

// Node's latin1 decoder called on the frame itself: no Buffer view per key.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;
/** byteKey of the frame's signature, without a subarray. */
const signatureKey = (frame: Uint8Array): string => latin1Slice.call(frame, 1 + 32, HEADER_LENGTH);
