/**
 * Exit codes of the `trustmesh` command, and the one error class that carries
 * them. Every failure a user can cause or fix ends up as a {@link CliError}
 * whose message says what to do next.
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  natsServerMissing: 3,
  unreachable: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string) => new CliError(EXIT.usage, message);
export const failure = (message: string, cause?: unknown) => new CliError(EXIT.failure, message, { cause });

export const NATS_INSTALL_HINT =
  'install it (Debian/Ubuntu: apt-get install nats-server; elsewhere https://docs.nats.io/running-a-nats-service/introduction/installation) or set NATS_SERVER_BIN to its path';
