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
} as const;

export type RejectReason = keyof typeof REJECT_REASONS;

export const isRejectReason = (value: unknown): value is RejectReason =>
  typeof value === 'string' && Object.prototype.hasOwnProperty.call(REJECT_REASONS, value);

/** Base class of every error TrustMesh throws; `code` is stable and safe to switch on. */
export class TrustMeshError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TrustMeshError';
    this.code = code;
  }
}

/** A frame was refused; `code` is one of {@link REJECT_REASONS}. */
export class FrameRejectedError extends TrustMeshError {
  declare readonly code: RejectReason;
  constructor(reason: RejectReason, detail: string) {
    super(reason, `frame rejected (${reason}): ${detail}`);
    this.name = 'FrameRejectedError';
  }
}

/** Programmer misuse: wrong argument type, length or value. Never thrown for attacker bytes. */
export class InvalidArgumentError extends TrustMeshError {
  constructor(message: string) {
    super('invalid_argument', message);
    this.name = 'InvalidArgumentError';
  }
}

export type KeyErrorCode = 'key_file_missing' | 'key_file_invalid' | 'key_file_permissions' | 'key_file_exists' | 'invalid_did';

export class KeyError extends TrustMeshError {
  declare readonly code: KeyErrorCode;
  constructor(code: KeyErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'KeyError';
  }
}
