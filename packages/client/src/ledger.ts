import { type Blame, type OpenedFrame, REJECT_REASONS, type RejectReason } from '@trustmesh/protocol';
import { Emitter } from './emitter.ts';
import type { PeerInfo } from './presence.ts';
import { cleanText } from './text.ts';

export interface RejectionEvent {
  /** A code of REJECT_REASONS, or an extension's own code. */
  reason: RejectReason | (string & {});
  /** Bounded, control characters escaped. */
  detail: string;
  subject: string;
  size: number;
  /** Whose fault the rejection proves (docs/protocol.md §8.1). */
  blame: Blame;
  /** The signer's DID, present ONLY when the rejection proves the signer misbehaved (`blame` is `signer`). */
  signer?: string;
  /** The DID named by the subject's last token: whoever published the frame, if the token is a valid agent id. */
  publisher?: string;
  /** True when the transport authenticated the publisher (secure mode); in open mode anyone may publish on any subject. */
  publisherAuthenticated: boolean;
  /** A copy of the frame when the signer is blamed, or an authenticated publisher (secure mode): the evidence a report to the broker carries. */
  evidence?: Uint8Array;
}

export interface AgentStats {
  sent: number;
  received: number;
  accepted: number;
  /** Rejections per reason code: every code of REJECT_REASONS, and extensions' codes once used. */
  rejected: Record<RejectReason, number> & Partial<Record<string, number>>;
  rejectedTotal: number;
  handlerErrors: number;
  unhandled: number;
  /** Handler calls running now. */
  inFlight: number;
  /** Handler calls waiting for a slot. */
  queued: number;
  pendingRequests: number;
  peers: number;
}

export type AgentEvents = {
  /** A verified frame passed every check and every guard. */
  accepted: (frame: OpenedFrame) => void;
  /** A frame was refused; the reason is also counted in `stats().rejected`. */
  rejected: (event: RejectionEvent) => void;
  /** A verified one-way message had no handler for its type. */
  unhandled: (frame: OpenedFrame) => void;
  /** A handler threw (for requests the requester also gets a signed `tm.error`). */
  handlerError: (error: unknown, frame: OpenedFrame) => void;
  peerJoined: (peer: PeerInfo) => void;
  /** A peer left, or was expired after missing its heartbeats (`reason`). */
  peerLeft: (peer: PeerInfo, reason: 'leave' | 'expired' | 'evicted') => void;
  /** Something went wrong inside the agent or its connection that no frame caused (e.g. the connection closed). */
  fault: (error: Error) => void;
};

/**
 * Counters and events: every stage of the pipeline reports here, and nothing
 * here calls back into a stage, so the stages need not know the agent.
 */
export class Ledger extends Emitter<AgentEvents> {
  readonly counters = { sent: 0, received: 0, accepted: 0, handlerErrors: 0, unhandled: 0 };
  private readonly rejections = new Map<string, number>();

  accept(frame: OpenedFrame): void {
    this.counters.accepted++;
    if (this.hasListeners('accepted')) this.emit('accepted', frame);
  }

  refuse(event: RejectionEvent): void {
    this.rejections.set(event.reason, (this.rejections.get(event.reason) ?? 0) + 1);
    if (!this.hasListeners('rejected')) return;
    this.emit('rejected', { ...event, detail: cleanText(event.detail) });
  }

  rejectedCounts(): { rejected: AgentStats['rejected']; rejectedTotal: number } {
    const rejected = Object.fromEntries(Object.keys(REJECT_REASONS).map((reason) => [reason, 0])) as AgentStats['rejected'];
    let rejectedTotal = 0;
    for (const [reason, n] of this.rejections) {
      rejected[reason] = n;
      rejectedTotal += n;
    }
    return { rejected, rejectedTotal };
  }

  report<K extends keyof AgentEvents>(event: K, ...args: Parameters<AgentEvents[K]>): void {
    this.emit(event, ...args);
  }
}

/**
 * The subject's last token as a DID, if it looks like an agent id. It names the
 * publisher; only an authenticating transport (secure mode) makes that a proof.
 */
export function publisherOf(subject: string, authenticated = false): { publisher?: string; publisherAuthenticated: boolean } {
  const dot = subject.lastIndexOf('.');
  const token = subject.slice(dot + 1);
  return token.startsWith('z6Mk') && token.length <= 64
    ? { publisher: `did:key:${token}`, publisherAuthenticated: authenticated }
    : { publisherAuthenticated: false };
}
