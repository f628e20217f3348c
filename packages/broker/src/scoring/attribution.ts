import type { PenaltyEvent } from './events.ts';

/**
 * A refusal the broker re-derived itself by running the stateless
 * verification stage on a reported frame (never a peer's word).
 */
export interface Rejection {
  /** The verifier's reject code (docs/protocol.md §8), e.g. `bad_signature`, `replay`, `equivocation`. */
  readonly reason: string;
  /** DID of the key whose signature verified; absent if the signature was not (or could not be) verified. */
  readonly signer?: string;
  /** DID named by the subject's sender token: who published the frame. Authenticated only in secure mode. */
  readonly publisher?: string;
  /** DID the frame claims (its `iss`, or the header key), if any: audited, never blamed. */
  readonly claimed?: string;
}

export interface AttributionContext {
  /** Secure mode: the server's per-user publish permissions make `publisher` proven. */
  readonly secure: boolean;
}

/** Who a rejection is attributed to and for what; `unattributed` changes nobody's score. */
export type Attribution =
  | { readonly outcome: 'attributed'; readonly did: string; readonly event: PenaltyEvent; readonly basis: 'signer' | 'publisher' }
  | {
      readonly outcome: 'unattributed';
      readonly cause: string;
      readonly claimed?: string;
      readonly publisher?: string;
    };

/** How the blame rule treats one rejection code. */
export type BlameRule =
  | { readonly party: 'signer'; readonly event: PenaltyEvent }
  | { readonly party: 'publisher'; readonly secureEvent?: PenaltyEvent }
  | { readonly party: 'nobody' };

/**
 * The blame rule (design brief §4, docs/protocol.md §8.1, docs/trust.md
 * §Attribution), as data, keyed by rejection code.
 * - `signer`: with a verified signature, only the signer can have produced it:
 *   evidence against the key whose signature verified.
 * - `publisher`: anyone who re-publishes the signer's frame can cause it, so at
 *   most the publisher is to blame, and only an authenticated one (secure
 *   mode); `secureEvent` names the event, and without one the rejection stays
 *   unattributed even in secure mode (honest publishers cause it: clock skew,
 *   a late reply after a timeout, a re-routing relay).
 * - `nobody`: refused unread, or a local condition (overload, kill, trust,
 *   policy: those reach the broker as checked facts of their own, such as
 *   `policy_violation` or `sent_while_killed`, never through this table).
 * A code missing from the table (a newer protocol) blames nobody.
 */
export const BLAME: { readonly [code: string]: BlameRule } = Object.freeze({
  too_large: { party: 'nobody' },
  bad_version: { party: 'signer', event: 'protocol_violation' },
  bad_frame: { party: 'signer', event: 'protocol_violation' },
  issuer_mismatch: { party: 'signer', event: 'protocol_violation' },
  future: { party: 'signer', event: 'protocol_violation' },
  equivocation: { party: 'signer', event: 'equivocation' },
  bad_signature: { party: 'publisher', secureEvent: 'bad_signature_authenticated' },
  replay: { party: 'publisher', secureEvent: 'replay_authenticated' },
  subject_mismatch: { party: 'publisher' },
  audience_mismatch: { party: 'publisher' },
  stale: { party: 'publisher' },
  unsolicited: { party: 'publisher' },
  overloaded: { party: 'nobody' },
  killed: { party: 'nobody' },
  untrusted: { party: 'nobody' },
  policy: { party: 'nobody' },
});

const NOBODY: BlameRule = { party: 'nobody' };

/**
 * Applies the blame rule to one rejection. A `signer` code without a verified
 * signer (e.g. `bad_frame` for a truncated header) is unattributed: only a
 * verified signature proves who signed. Never throws.
 */
export function attribute(rejection: Rejection, context: AttributionContext): Attribution {
  const { reason, signer, publisher, claimed } = rejection;
  const cause = typeof reason === 'string' ? reason.slice(0, 64) : 'unknown';
  const rule = Object.hasOwn(BLAME, cause) ? BLAME[cause]! : NOBODY;
  if (rule.party === 'signer' && typeof signer === 'string' && signer.length > 0) {
    return { outcome: 'attributed', did: signer, event: rule.event, basis: 'signer' };
  }
  if (rule.party === 'publisher' && context.secure === true && rule.secureEvent && typeof publisher === 'string' && publisher.length > 0) {
    return { outcome: 'attributed', did: publisher, event: rule.secureEvent, basis: 'publisher' };
  }
  return {
    outcome: 'unattributed',
    cause,
    ...(typeof claimed === 'string' ? { claimed } : {}),
    ...(typeof publisher === 'string' ? { publisher } : {}),
  };
}

/**
 * Counts of unattributed rejections by cause: plain JSON, for metrics and the
 * operator. Bounded: causes outside {@link BLAME} share one `other` counter.
 */
export interface UnattributedTally {
  readonly schema: 1;
  readonly since: number;
  readonly total: number;
  readonly causes: { readonly [cause: string]: number };
}

export const emptyTally = (now: number): UnattributedTally => ({ schema: 1, since: now, total: 0, causes: {} });

/** Adds one unattributed outcome to the tally. Changes no score, by construction: it takes no trust state. */
export function countUnattributed(tally: UnattributedTally, attribution: Attribution & { outcome: 'unattributed' }): UnattributedTally {
  const cause = Object.hasOwn(BLAME, attribution.cause) ? attribution.cause : 'other';
  return { ...tally, total: tally.total + 1, causes: { ...tally.causes, [cause]: (tally.causes[cause] ?? 0) + 1 } };
}
