import type { RejectReason } from '../codes.ts';
import { ed25519Backend } from '../identity/ed25519.ts';
import { type Signer, SignerCache } from '../identity/signers.ts';
import { parseRoute, type Route } from '../subjects/subjects.ts';
import { DEFAULT_MAX_FRAME_BYTES, type OpenedFrame, open } from './frame.ts';

/**
 * Who a rejection is evidence against (docs/protocol.md §8.1).
 * - `signer`: the frame proves its signer misbehaved (it signed a bad body, a
 *   wrong `iss`, a future `iat`, or two frames with one id).
 * - `publisher`: whoever published these bytes on this subject; anyone can
 *   re-publish a signer's valid frame, so only an authenticated publisher (secure
 *   mode) can be blamed, never the signer.
 * - `none`: nobody can be blamed (reserved for local conditions such as overload).
 */
export type Blame = 'signer' | 'publisher' | 'none';

const SIGNER_FAULTS: ReadonlySet<RejectReason> = new Set(['bad_frame', 'bad_version', 'issuer_mismatch', 'future', 'equivocation']);

/** The blame rule as a function: `signatureVerified` says whether rule 4 passed. */
export function blameFor(reason: RejectReason, signatureVerified: boolean): Blame {
  return signatureVerified && SIGNER_FAULTS.has(reason) ? 'signer' : 'publisher';
}

export interface Verified {
  ok: true;
  frame: OpenedFrame;
  /** The arrival subject, parsed once. */
  route: Route;
  /** The signing key, parsed once and cached. */
  signer: Signer;
}

export interface Rejected {
  ok: false;
  reason: RejectReason;
  detail: string;
  blame: Blame;
  /** DID of the key whose signature verified, when rule 4 passed. Informational: see `blame`. */
  signedBy?: string;
}

export type StatelessResult = Verified | Rejected;

export interface StatelessVerifierInit {
  /** Frames larger than this are refused unread; default 1 MiB. */
  maxFrameBytes?: number;
  /** Ed25519 implementation; default `node`. */
  backend?: 'node' | 'noble';
  /** Memo of parsed signer keys; one is created when omitted. */
  signers?: SignerCache;
}

/**
 * The stateless stage of docs/protocol.md §7: everything a frame proves by
 * itself, whoever checks it and whenever: size, version, the header key against
 * the subject's sender, signature, body, issuer and subject binding. No clock,
 * no memory: the broker and the audit re-check old frames with this stage alone.
 * Never throws on frame bytes or subjects.
 */
export class StatelessVerifier {
  readonly maxFrameBytes: number;
  readonly signers: SignerCache;

  constructor(init: StatelessVerifierInit = {}) {
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.signers = init.signers ?? sharedSigners(init.backend ?? 'node');
  }

  verify(bytes: Uint8Array, subject: string): StatelessResult {
    const route = parseRoute(subject);
    if (route === undefined) {
      return { ok: false, reason: 'subject_mismatch', detail: 'arrival subject is not a mesh subject', blame: 'publisher' };
    }
    const { result, signer } = open(bytes, this.maxFrameBytes, this.signers, route.from);
    if (!result.ok) {
      const verified = result.signer !== undefined;
      const rejected: Rejected = { ok: false, reason: result.reason, detail: result.detail, blame: blameFor(result.reason, verified) };
      if (verified) rejected.signedBy = result.signer;
      return rejected;
    }
    const frame = result.frame;
    if (frame.sub !== subject) {
      return {
        ok: false,
        reason: 'subject_mismatch',
        detail: `signed for ${frame.sub.slice(0, 120)}, arrived on ${subject.slice(0, 120)}`,
        blame: 'publisher',
        signedBy: frame.iss,
      };
    }
    return { ok: true, frame, route, signer: signer! };
  }
}

const signerCaches = new Map<'node' | 'noble', SignerCache>();

/**
 * One bounded signer cache per backend for the whole process: a key parsed for
 * one agent is parsed for all (10,000 agents in a process would otherwise each
 * hold a cache, and parse the same peers 10,000 times).
 */
function sharedSigners(backend: 'node' | 'noble'): SignerCache {
  let cache = signerCaches.get(backend);
  if (cache === undefined) signerCaches.set(backend, (cache = new SignerCache(ed25519Backend(backend))));
  return cache;
}

let shared: StatelessVerifier | undefined;

/** One-off stateless verification with a shared, bounded signer cache. */
export function verifyStateless(bytes: Uint8Array, subject: string): StatelessResult {
  shared ??= new StatelessVerifier();
  return shared.verify(bytes, subject);
}
