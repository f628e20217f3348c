/**
 * Rejection reasons are data: every frame a receiver refuses is refused with
 * exactly one of these codes. The table is normative (docs/protocol.md §8).
 */
export const REJECT_REASONS = {
  too_large: 'frame is larger than the receiver accepts; refused unread',
  bad_frame: 'frame or body is malformed (truncated, not MessagePack, wrong field types, duplicate keys)',
  bad_version: 'unknown frame version',
  bad_signature: 'Ed25519 signature does not verify over the signing input',
  issuer_mismatch: 'body.iss is not the did:key of the public key that signed the frame',
  subject_mismatch: 'frame is not valid on the subject it arrived on (body.sub differs, or the subject names another sender)',
  audience_mismatch: 'body.aud names another agent than the receiver',
  stale: 'body.iat is older than the acceptance window',
  future: 'body.iat is further in the future than the acceptance window',
  replay: '(iss, id) was already accepted',
  unsolicited: 'a reply that answers no pending request of this agent',
  equivocation: 'another frame with the same (iss, id) was already accepted: only the signer can make two',
  // Local refusals after every wire rule passed (docs/protocol.md §8): not part of the wire protocol.
  overloaded: 'the receiver had no room to verify or handle the frame; dropped unread or unhandled',
  killed: 'the sender (or this agent) is halted by an operator kill',
  untrusted: "the sender's trust score is below the mesh's untrusted line",
  policy: 'the frame breaks a policy rule of the receiver (type, size, rate, schema, allowed senders)',
} as const;

export type RejectReason = keyof typeof REJECT_REASONS;

export const isRejectReason = (value: unknown): value is RejectReason => typeof value === 'string' && Object.hasOwn(REJECT_REASONS, value);

/**
 * Message types the protocol itself defines (docs/protocol.md §9–10).
 * Application types must not start with {@link RESERVED_TYPE_PREFIX}.
 */
export const MESSAGE_TYPES = {
  presence: 'tm.presence',
  reply: 'tm.reply',
  error: 'tm.error',
} as const;

export type MessageType = (typeof MESSAGE_TYPES)[keyof typeof MESSAGE_TYPES];

export const RESERVED_TYPE_PREFIX = 'tm.';

/** Codes a replier puts in `tm.error` data (docs/protocol.md §10). Peers may send others. */
export const ERROR_CODES = {
  no_handler: 'the replier handles no requests of that type',
  handler_error: 'the handler failed',
  reply_too_large: "the handler's result does not fit in one frame",
  reply_unencodable: "the handler's result is not plain MessagePack",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
