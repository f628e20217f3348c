/**
 * Every way starting a nats-server can fail, as data: `code` is stable and
 * safe to switch on; the text says what it means.
 */
export const NATS_SERVER_ERRORS = {
  nats_server_missing: 'the nats-server binary was not found or is not executable',
  nats_server_start_failed: 'nats-server exited, or could not be spawned, before it was ready',
  nats_server_timeout: 'nats-server did not become ready within startTimeoutMs',
  invalid_init: 'an option passed to startNatsServer is out of range',
} as const;

export type NatsServerErrorCode = keyof typeof NATS_SERVER_ERRORS;

/** What to tell someone who has no nats-server. */
export const INSTALL_HINT =
  'Install it: on Debian/Ubuntu `apt-get install nats-server`, or set NATS_SERVER_BIN to the path of a nats-server binary.';

export class NatsServerError extends Error {
  readonly code: NatsServerErrorCode;
  constructor(code: NatsServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NatsServerError';
    this.code = code;
  }
}
