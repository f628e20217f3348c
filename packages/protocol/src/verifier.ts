import { byteKey } from './bytes.ts';
import { DidCache } from './did.ts';
import { ed25519Backend } from './ed25519.ts';
import type { RejectReason } from './errors.ts';
import { DEFAULT_MAX_FRAME_BYTES, openFrame, type OpenedFrame } from './frame.ts';
import { DEFAULT_WINDOW_MS, ReplayGuard, type ReplayGuardInit } from './replay.ts';
import { senderOfSubject } from './subjects.ts';

export type VerifyResult = { ok: true; frame: OpenedFrame } | { ok: false; reason: RejectReason; detail: string };

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
 * Applies every receiver rule of docs/protocol.md §6, in order:
 * size, version, signature, body, issuer, subject, audience, time, replay.
 * Never throws on frame bytes.
 */
export class FrameVerifier {
  readonly maxFrameBytes: number;
  readonly windowMs: number;
  readonly replay: ReplayGuard;
  private readonly now: () => number;
  private readonly self: string | undefined;
  private readonly backend;
  private readonly dids = new DidCache();

  constructor(init: VerifierInit = {}) {
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.windowMs = init.windowMs ?? DEFAULT_WINDOW_MS;
    this.replay = new ReplayGuard(init);
    this.now = init.now ?? Date.now;
    this.self = init.self;
    this.backend = ed25519Backend(init.backend);
  }

  verify(frame: Uint8Array, context: VerifyContext): VerifyResult {
    const opened = openFrame(frame, { maxFrameBytes: this.maxFrameBytes, backend: this.backend, didCache: this.dids });
    if (!opened.ok) return opened;
    const body = opened.frame;
    if (body.sub !== context.subject) {
      return { ok: false, reason: 'subject_mismatch', detail: `signed for ${body.sub.slice(0, 120)}, arrived on ${context.subject.slice(0, 120)}` };
    }
    // did:key:<agentId> — the subject's last token must be the signer's agent id.
    if (senderOfSubject(context.subject) !== body.iss.slice(8)) {
      return { ok: false, reason: 'subject_mismatch', detail: 'subject names another sender than the signer' };
    }
    if (body.aud !== undefined && this.self !== undefined && body.aud !== this.self) {
      return { ok: false, reason: 'audience_mismatch', detail: `addressed to ${body.aud.slice(0, 80)}` };
    }
    const now = this.now();
    if (body.iat < now - this.windowMs) return { ok: false, reason: 'stale', detail: `iat ${now - body.iat} ms old, window ${this.windowMs} ms` };
    if (body.iat > now + this.windowMs) return { ok: false, reason: 'future', detail: `iat ${body.iat - now} ms ahead, window ${this.windowMs} ms` };
    const verdict = this.replay.checkAndRemember(byteKey(body.publicKey) + byteKey(body.id), body.iat, now);
    if (verdict === 'replay') return { ok: false, reason: 'replay', detail: '(iss, id) already accepted' };
    if (verdict === 'stale') return { ok: false, reason: 'stale', detail: 'iat below the replay floor raised under load' };
    return opened;
  }
}
