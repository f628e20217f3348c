import type { RejectReason } from '../codes.ts';
import { byteKey } from '../util/bytes.ts';
import { DEFAULT_MAX_FRAME_BYTES, HEADER_LENGTH } from './frame.ts';
import { DEFAULT_WINDOW_MS, ReplayGuard, type ReplayGuardInit } from './replay.ts';
import { blameFor, type Rejected, StatelessVerifier, type Verified } from './stateless.ts';

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

const SIGNATURE_START = 1 + 32;

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
    const seen =
      frame instanceof Uint8Array && frame.length <= this.maxFrameBytes && frame.length >= HEADER_LENGTH
        ? this.duplicates.get(frame, context.subject)
        : undefined;
    if (seen !== undefined) {
      // The same outcome the full checks would give, without a signature check.
      if (seen.accepted === undefined)
        return { ok: false, reason: 'bad_signature', detail: 'copy of a frame whose signature did not verify', blame: 'publisher' };
      const { iat, keyId, agentId, did } = seen.accepted;
      const now = this.now();
      const stale = iat < now - this.windowMs || iat <= this.replay.floorOf(keyId, this.isKnown(agentId));
      return stale
        ? { ok: false, reason: 'stale', detail: 'copy of an accepted frame, now stale', blame: 'publisher', signedBy: did }
        : { ok: false, reason: 'replay', detail: 'copy of a frame already accepted', blame: 'publisher', signedBy: did };
    }
    const result = this.stateless.verify(frame, context.subject);
    if (!result.ok) {
      if (result.reason === 'bad_signature') {
        this.duplicates.remember(Uint8Array.prototype.slice.call(frame) as Uint8Array, context.subject, { accepted: undefined });
      }
      return result;
    }
    const body = result.frame;
    const refuse = (reason: RejectReason, detail: string): Rejected => ({
      ok: false,
      reason,
      detail,
      blame: blameFor(reason, true),
      signedBy: body.iss,
    });
    if (body.aud !== undefined && this.self !== undefined && body.aud !== this.self) {
      return refuse('audience_mismatch', `addressed to ${body.aud.slice(0, 80)}`);
    }
    const now = this.now();
    if (body.iat < now - this.windowMs) return refuse('stale', `iat ${now - body.iat} ms old, window ${this.windowMs} ms`);
    if (body.iat > now + this.windowMs) return refuse('future', `iat ${body.iat - now} ms ahead, window ${this.windowMs} ms`);
    if (body.iat < this.notBefore) return refuse('stale', 'issued before this receiver started (its replay memory is younger)');
    const fingerprint = byteKey(body.raw.subarray(SIGNATURE_START, SIGNATURE_START + 16));
    const verdict = this.replay.check(
      result.signer.keyId,
      byteKey(body.id),
      fingerprint,
      body.iat,
      now,
      this.isKnown(result.signer.agentId),
    );
    if (verdict === 'replay') return refuse('replay', '(iss, id) already accepted');
    if (verdict === 'equivocation') return refuse('equivocation', 'another frame with this (iss, id) was already accepted');
    if (verdict === 'stale') return refuse('stale', "iat at or below the signer's replay floor, raised under load");
    this.duplicates.remember(body.raw, context.subject, {
      accepted: { iat: body.iat, keyId: result.signer.keyId, agentId: result.signer.agentId, did: body.iss },
    });
    return result;
  }
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

  get(frame: Uint8Array, subject: string): Seen | undefined {
    if (this.entries.size === 0) return undefined;
    const entry = this.entries.get(signatureKey(frame));
    if (entry === undefined || entry.subject !== subject || entry.frame.length !== frame.length) return undefined;
    return Buffer.from(entry.frame.buffer, entry.frame.byteOffset, entry.frame.length).equals(frame) ? entry.seen : undefined;
  }

  /** `frame` is kept by reference: pass a copy the caller will not change (an opened frame's `raw`). */
  remember(frame: Uint8Array, subject: string, seen: Seen): void {
    if (!(frame instanceof Uint8Array) || frame.length < HEADER_LENGTH || frame.length > DuplicateMemory.MAX_FRAME || this.limit < 1)
      return;
    const key = signatureKey(frame);
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.entries.delete(key);
      this.bytes -= old.frame.length;
    }
    while (this.entries.size > 0 && (this.entries.size >= this.limit || this.bytes + frame.length > this.maxBytes)) {
      const [oldestKey, oldest] = this.entries.entries().next().value!;
      this.entries.delete(oldestKey);
      this.bytes -= oldest.frame.length;
    }
    this.entries.set(key, { frame, subject, seen });
    this.bytes += frame.length;
  }
}

const signatureKey = (frame: Uint8Array): string => byteKey(frame.subarray(1 + 32, HEADER_LENGTH));
