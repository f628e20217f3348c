import { TrustMeshError } from '@trustmesh/protocol';

/**
 * Every way secure mode can fail, as data: `code` is stable and safe to switch
 * on; the text says what it means.
 */
export const SECURE_ERRORS = {
  invalid_argument: 'an argument is out of range or of the wrong shape (the message names it)',
  mesh_dir_exists: 'a mesh directory already holds an authority; load it instead of creating a new one',
  mesh_dir_invalid: 'the mesh directory is missing a file, or a file is corrupt or does not match the others',
  secret_file_permissions: 'a seed or creds file is readable by group or others, or is a symbolic link',
  key_mismatch: 'the JWT was issued for another key than the one presented',
  not_admitted: 'the server refused the connection: the key was never admitted, its JWT expired, or it was revoked',
  permission_denied: 'the server refused a publish or subscription that the connection is not permitted',
  account_update_failed: 'the running server did not accept the updated account JWT',
  creds_invalid: 'a creds file does not hold a user JWT and a user nkey seed',
  jetstream_error: 'a JetStream API request of the authority or its tools was refused or failed (the message has the server text)',
} as const;

export type SecureErrorCode = keyof typeof SECURE_ERRORS;

/** A secure-mode failure; `code` is one of {@link SECURE_ERRORS}. */
export class SecureModeError extends TrustMeshError {
  declare readonly code: SecureErrorCode;
  constructor(code: SecureErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SecureModeError';
  }
}

/**
 * nats-server refused a publish or a subscription of this connection
 * (`code` is `permission_denied`). `reason` says which rule refused it.
 */
export class PermissionDeniedError extends SecureModeError {
  readonly operation: 'publish' | 'subscribe';
  readonly subject: string;
  readonly reason: string;
  constructor(operation: 'publish' | 'subscribe', subject: string, reason: string, options?: { cause?: unknown }) {
    super(
      'permission_denied',
      `nats-server refused to let this connection ${operation} ${operation === 'publish' ? 'to' : 'on'} "${subject}": ${reason}`,
      options,
    );
    this.name = 'PermissionDeniedError';
    this.operation = operation;
    this.subject = subject;
    this.reason = reason;
  }
}

export const invalid = (message: string): never => {
  throw new SecureModeError('invalid_argument', message);
};
