import { byteKey } from '../util/bytes.ts';
import { ed25519Backend } from '../identity/ed25519.ts';
import type { RejectReason } from '../codes.ts';
import { DEFAULT_MAX_FRAME_BYTES, open, type OpenResult } from './frame.ts';
import { SignerCache } from '../identity/signers.ts';
import { DEFAULT_WINDOW_MS, ReplayGuard, type ReplayGuardInit } from './replay.ts';
import { senderOfSubject } from '../subjects/subjects.ts';

/** As {@link OpenResult}: `signer` names the key once the signature has verified. */
export type VerifyResult = OpenResult;

export interface VerifierInit extends ReplayGuardInit {
  /** Frames larger than this are refused unread; default 1 MiB. */
  maxFrameBytes?: number;
  /** Ed25519 implementation; default `node`. */
  backend?: 'node' | 'noble';
  /** Clock in ms since the epoch; injectable for tests. */
  now?: () => number;
  /** The receiving agent's DID: frames with another `aud` are refused. */
  self?: string;
}

export interface VerifyContext {
  /** The NATS subject the frame arrived on. */
  subject: string;
}

/**
 * Applies every receiver rule of docs/protocol.md §7, in order:
 * size, version, signature, body, issuer, subject, audience, time, replay.
 * Never throws on frame bytes.
 */
export class FrameVerifier {
  readonly maxFrameBytes: number;
  readonly windowMs: number;
  readonly replay: ReplayGuard;
  private readonly now: () => number;
  private readonly self: string | undefined;
  private readonly signers: SignerCache;

  constructor(init: VerifierInit = {}) {
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.windowMs = init.windowMs ?? DEFAULT_WINDOW_MS;
    this.replay = new ReplayGuard(init);
    this.now = init.now ?? Date.now;
    this.self = init.self;
    this.signers = new SignerCache(ed25519Backend(init.backend));
  }

  verify(frame: Uint8Array, context: VerifyContext): VerifyResult {
    const { result: opened, signer } = open(frame, this.maxFrameBytes, this.signers);
    if (!opened.ok) return opened;
    const body = opened.frame;
    // Past the issuer check, iss is the signer: every refusal below is attributable to it.
    const refuse = (reason: RejectReason, detail: string): VerifyResult => ({ ok: false, reason, detail, signer: body.iss });
    if (body.sub !== context.subject) {
      return refuse('subject_mismatch', `signed for ${body.sub.slice(0, 120)}, arrived on ${context.subject.slice(0, 120)}`);
    }
    // did:key:<agentId> — the subject's last token must be the signer's agent id.
    if (senderOfSubject(context.subject) !== signer!.agentId)
      return refuse('subject_mismatch', 'subject names another sender than the signer');
    if (body.aud !== undefined && this.self !== undefined && body.aud !== this.self) {
      return refuse('audience_mismatch', `addressed to ${body.aud.slice(0, 80)}`);
    }
    const now = this.now();
    if (body.iat < now - this.windowMs) return refuse('stale', `iat ${now - body.iat} ms old, window ${this.windowMs} ms`);
    if (body.iat > now + this.windowMs) return refuse('future', `iat ${body.iat - now} ms ahead, window ${this.windowMs} ms`);
    const verdict = this.replay.checkAndRemember(signer!.keyId + byteKey(body.id), body.iat, now);
    if (verdict === 'replay') return refuse('replay', '(iss, id) already accepted');
    if (verdict === 'stale') return refuse('stale', 'iat below the replay floor raised under load');
    return opened;
  }
}
