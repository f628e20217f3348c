import type { RejectReason } from '../codes.ts';
import { ed25519Backend } from '../identity/ed25519.ts';
import { HEADER_LENGTH } from './frame.ts';
import { type Signer, SignerCache } from '../identity/signers.ts';
import { parseRoute, type Route } from '../subjects/subjects.ts';
import { checkBody, DEFAULT_MAX_FRAME_BYTES, type OpenedFrame, type OpenResult, openHeader, verifyFrameSignature } from './frame.ts';

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

/**
 * The blame rule as a function: `signatureVerified` says whether rule 4 passed.
 * Bytes that are not a frame at all (too short, another version byte) blame
 * nobody: in secure mode the server itself routes JetStream's JSON answers to
 * whatever reply subject a requester names, so such bytes on X's subject need
 * not come from X's connection.
 */
export function blameFor(reason: RejectReason, signatureVerified: boolean): Blame {
  if (signatureVerified) return SIGNER_FAULTS.has(reason) ? 'signer' : 'publisher';
  return reason === 'bad_frame' || reason === 'bad_version' ? 'none' : 'publisher';
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
    const pre = this.precheck(bytes, subject);
    if (!pre.ok) return pre;
    return this.complete(bytes, subject, pre, verifyFrameSignature(bytes, pre.signer));
  }

  /**
   * The checks before the signature: the arrival subject, size, version, and
   * the header key against the subject's sender. Cheap; a verification pool
   * runs them before it hands the signature check to a worker.
   */
  precheck(bytes: Uint8Array, subject: string): Prechecked | Rejected {
    const route = this.route(subject);
    if (route === undefined) {
      return { ok: false, reason: 'subject_mismatch', detail: 'arrival subject is not a mesh subject', blame: 'publisher' };
    }
    const pre = openHeader(bytes, this.maxFrameBytes, this.lastSigner, route.from);
    if (!pre.ok) return { ok: false, reason: pre.reason, detail: pre.detail, blame: blameFor(pre.reason, false) };
    return { ok: true, route, signer: pre.signer };
  }

  /**
   * The rest of the stage once the signature of a {@link precheck}ed frame has
   * been checked (`signatureValid`: here, or by a worker): body, issuer and
   * subject binding.
   */
  complete(bytes: Uint8Array, subject: string, pre: Prechecked, signatureValid: boolean): StatelessResult {
    if (!signatureValid) return { ok: false, reason: 'bad_signature', detail: 'signature does not verify', blame: 'publisher' };
    const result: OpenResult = checkBody(bytes, bytes.subarray(HEADER_LENGTH), pre.signer.did);
    if (!result.ok) {
      const rejected: Rejected = { ok: false, reason: result.reason, detail: result.detail, blame: blameFor(result.reason, true) };
      rejected.signedBy = pre.signer.did;
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
    return { ok: true, frame, route: pre.route, signer: pre.signer };
  }

  /** parseRoute, remembering the last subject: a sender's frames arrive on one subject, one after another. */
  private route(subject: string): Route | undefined {
    if (subject === this.lastSubject) return this.lastRoute;
    const route = parseRoute(subject);
    if (route !== undefined) {
      this.lastSubject = subject;
      this.lastRoute = Object.freeze(route);
    }
    return route;
  }

  private lastSubject: string | undefined;
  private lastRoute: Route | undefined;
  private readonly lastSigner = new LastSigner(this);
}

/**
 * The signer cache behind a one-entry memo: frames come in runs from one
 * sender, so the last key is compared byte for byte before a string key is made.
 */
class LastSigner {
  private publicKey: Uint8Array | undefined;
  private signer: Signer | undefined;
  constructor(private readonly owner: { readonly signers: SignerCache }) {}

  get(publicKey: Uint8Array): Signer {
    const last = this.publicKey;
    if (last !== undefined && publicKey.length === last.length) {
      let i = 0;
      while (i < last.length && last[i] === publicKey[i]) i++;
      if (i === last.length) return this.signer!;
    }
    const signer = this.owner.signers.get(publicKey);
    this.publicKey = Uint8Array.prototype.slice.call(publicKey) as Uint8Array;
    this.signer = signer;
    return signer;
  }
}

/** A frame past {@link StatelessVerifier.precheck}: its route and the key to verify its signature with. */
export interface Prechecked {
  ok: true;
  route: Route;
  signer: Signer;
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
