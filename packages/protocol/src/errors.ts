import type { RejectReason } from './codes.ts';

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
