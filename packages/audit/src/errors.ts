/**
 * Every error this package throws is an {@link AuditError} with a stable `code`.
 * Problems found *in a log* are not errors: {@link verifyLog} reports them as data.
 */
export const AUDIT_ERROR_CODES = {
  invalid_argument: 'a caller passed a value of the wrong type, length or range',
  log_corrupt: 'the log has a damaged record before its last one; refusing to append to it',
  log_behind_checkpoint: 'the log is shorter than a checkpoint this service signed; refusing to continue',
  log_mismatch: 'the log belongs to another mesh or is not a TrustMesh audit log',
  writer_conflict: 'another writer appended to the JetStream log (expected-last-sequence failed)',
  store_closed: 'the store was closed',
  not_running: 'the audit service is not running',
  timeout: 'the audit did not catch up with the capture stream in time',
  capture_reset: 'the capture stream is behind the log (it was deleted and created again); its sequences would be taken for duplicates',
} as const;

export type AuditErrorCode = keyof typeof AUDIT_ERROR_CODES;

export class AuditError extends Error {
  readonly code: AuditErrorCode;
  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditError';
    this.code = code;
  }
}

export const invalid = (message: string): AuditError => new AuditError('invalid_argument', message);
