import { type FrameVerifier, MESSAGE_TYPES, type OpenedFrame, RESERVED_TYPE_PREFIX, type VerifyResult } from '@trustmesh/protocol';
import type { Dispatcher } from './dispatch.ts';
import { headerKeyId } from './intake.ts';
import type { InboundFrame, InboundGuard, Refusal } from './extensions.ts';
import { type Ledger, publisherOf, type RejectionEvent } from './ledger.ts';
import type { Requests } from './requests.ts';

/**
 * Everything addressed to one agent: verify (both stages), inbound guards,
 * then route by the subject's kind to the pending requests (`rep`) or to the
 * dispatcher (`msg`, `req`). Never throws on a frame.
 */
/** Where an extension's frames go once verified (and, unless it opts out, admitted by the guards). */
export interface ExtensionSink {
  handler: (input: InboundFrame) => void;
  /** Run the inbound guards first; false for control traffic that must pass a halted agent (kill, revive). */
  guards: boolean;
}

export class Inbound {
  readonly guards: InboundGuard[] = [];
  /** Addressed kinds (`tm.<mesh>.<kind>.<me>.<from>`) that extensions handle. */
  readonly kinds = new Map<string, ExtensionSink>();
  closed = false;

  constructor(
    private readonly verifier: FrameVerifier,
    private readonly ledger: Ledger,
    private readonly requests: Requests,
    private readonly dispatcher: Dispatcher,
    private readonly selfId: string,
    private readonly publisherAuthenticated: boolean,
    /** Keys whose frames failed their signature lately: not served as known peers. */
    private readonly suspect: (keyId: string) => void,
  ) {}

  process(subject: string, data: Uint8Array, sink?: ExtensionSink): void {
    if (this.closed) return;
    this.settle(subject, data, this.verifier.verify(data, { subject }), sink);
  }

  /** What follows verification (here, or a pool's): the refusal, or guards and routing. */
  settle(subject: string, data: Uint8Array, result: VerifyResult, sink?: ExtensionSink): void {
    if (this.closed) return;
    if (!result.ok) {
      if (result.reason === 'bad_signature' && data.length >= 33) this.suspect(headerKeyId(data));
      this.refuse(
        subject,
        data.length,
        { reason: result.reason, detail: result.detail, blame: result.blame },
        result.signedBy,
        result.blame === 'signer' || (result.blame === 'publisher' && this.publisherAuthenticated) ? data : undefined,
      );
      return;
    }
    const { frame, route } = result;
    const size = data.length;
    // An extension's own subscription (broadcast or queue-group subjects): its sink decides the rest.
    if (sink !== undefined) {
      this.deliver(subject, size, { frame, route, subject }, sink);
      return;
    }
    if (route.to !== this.selfId) {
      this.refuse(subject, size, { reason: 'subject_mismatch', detail: 'not addressed to this agent', blame: 'publisher' });
      return;
    }
    const kind = route.kind;
    const extension = this.kinds.get(kind);
    if (extension !== undefined) {
      this.deliver(subject, size, { frame, route, subject }, extension);
      return;
    }
    if (kind !== 'msg' && kind !== 'req' && kind !== 'rep') {
      this.refuse(subject, size, {
        reason: 'subject_mismatch',
        detail: `'${kind.slice(0, 32)}' is not a message kind (msg, req, rep)`,
        blame: 'publisher',
      });
      return;
    }
    // docs/protocol.md §10: msg, req and rep carry aud; msg and req carry application types only.
    if (frame.aud === undefined) {
      this.signerFault(subject, size, frame, `a ${kind} frame must carry aud`);
      return;
    }
    if (kind !== 'rep' && frame.typ.startsWith(RESERVED_TYPE_PREFIX)) {
      this.signerFault(subject, size, frame, `reserved type '${frame.typ.slice(0, 40)}' on a ${kind} subject`);
      return;
    }
    if (this.guards.length > 0 && !this.admit({ frame, route, subject }, size)) return;
    if (kind === 'rep') {
      const reason = this.requests.onReply(frame, route.from);
      if (reason === 'unsolicited') {
        this.refuse(subject, size, { reason, detail: 'reply matches no pending request to its sender', blame: 'publisher' }, frame.iss);
        return;
      }
      if (reason !== undefined) {
        this.signerFault(subject, size, frame, `a reply's type must be ${MESSAGE_TYPES.reply} or ${MESSAGE_TYPES.error}`);
        return;
      }
      this.ledger.accept(frame);
      return;
    }
    this.ledger.accept(frame);
    this.dispatcher.submit(frame, kind === 'req', { did: frame.iss, agentId: route.from }, subject);
  }

  private signerFault(subject: string, size: number, frame: OpenedFrame, detail: string): void {
    this.refuse(subject, size, { reason: 'bad_frame', detail, blame: 'signer' }, frame.iss, frame.raw);
  }

  /** Runs the inbound guards; false (and counted) when one refuses. */
  private admit(input: InboundFrame, size: number): boolean {
    for (const guard of this.guards) {
      let refusal: Refusal | undefined;
      try {
        refusal = guard(input);
      } catch (err) {
        refusal = { reason: 'policy', detail: `a guard failed: ${err instanceof Error ? err.message : typeof err}`, blame: 'none' };
      }
      if (refusal !== undefined) {
        const blame = refusal.blame ?? 'signer';
        this.refuse(input.subject, size, { ...refusal, blame }, input.frame.iss, blame === 'signer' ? input.frame.raw : undefined);
        return false;
      }
    }
    return true;
  }

  private deliver(subject: string, size: number, input: InboundFrame, sink: ExtensionSink): void {
    if (sink.guards && !this.admit(input, size)) return;
    this.ledger.accept(input.frame);
    try {
      sink.handler(input);
    } catch (err) {
      this.ledger.report('fault', err instanceof Error ? err : new Error(`an extension handler on ${subject.slice(0, 120)} threw`));
    }
  }

  /** Counts and reports a refusal. The signer is named only when the blame is its own. */
  refuse(
    subject: string,
    size: number,
    refusal: Refusal & { blame: NonNullable<Refusal['blame']> },
    signedBy?: string,
    evidence?: Uint8Array,
  ): void {
    const event: RejectionEvent = {
      reason: refusal.reason,
      detail: refusal.detail,
      subject,
      size,
      blame: refusal.blame,
      ...publisherOf(subject),
      publisherAuthenticated: this.publisherAuthenticated,
    };
    if (refusal.blame === 'signer' && signedBy !== undefined) {
      event.signer = signedBy;
      if (evidence !== undefined) event.evidence = Uint8Array.prototype.slice.call(evidence) as Uint8Array;
    } else if (refusal.blame === 'publisher' && this.publisherAuthenticated && evidence !== undefined) {
      // Secure mode: the bytes are evidence against the authenticated publisher (a broker re-checks them).
      event.evidence = Uint8Array.prototype.slice.call(evidence) as Uint8Array;
    }
    this.ledger.refuse(event);
  }
}
