import { accessSync, constants, statSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { INSTALL_HINT, NatsServerError } from './errors.ts';

/** Where nats-server is looked for after $NATS_SERVER_BIN and $PATH. */
export const WELL_KNOWN_PATHS = ['/usr/sbin/nats-server', '/usr/local/bin/nats-server'] as const;

const isExecutableFile = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

const searchPath = (name: string, env: NodeJS.ProcessEnv): string | undefined => {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && isExecutableFile(join(dir, name))) return join(dir, name);
  }
  return undefined;
};

/**
 * The nats-server to run: `$NATS_SERVER_BIN` when set (and nothing else, so a
 * wrong setting is reported rather than silently bypassed), else `nats-server`
 * on `$PATH`, else /usr/sbin/nats-server, else /usr/local/bin/nats-server.
 * `undefined` when none of them is an executable file.
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.NATS_SERVER_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return resolveBinary(fromEnv, env);
  return searchPath('nats-server', env) ?? WELL_KNOWN_PATHS.find(isExecutableFile);
}

/** A path is taken as is; a bare name is looked up on `$PATH`. */
export function resolveBinary(binary: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (binary.includes('/')) return isExecutableFile(binary) ? binary : undefined;
  return searchPath(binary, env);
}

/** The binary to run for `binary` (or the default), or a `nats_server_missing` error. */
export function requireNatsServer(binary?: string): string {
  const found = binary === undefined ? findNatsServer() : resolveBinary(binary);
  if (found !== undefined) return found;
  const what =
    binary !== undefined
      ? `nats-server not found: ${binary} is not an executable file.`
      : process.env.NATS_SERVER_BIN
        ? `nats-server not found: NATS_SERVER_BIN=${process.env.NATS_SERVER_BIN} is not an executable file.`
        : `nats-server not found on PATH, nor at ${WELL_KNOWN_PATHS.join(' or ')}.`;
  return missing(`${what} ${INSTALL_HINT}`);
}

const missing = (message: string, cause?: unknown): never => {
  throw new NatsServerError('nats_server_missing', message, { cause });
};

/**
 * The version `binary` reports (`nats-server --version`), e.g. `"2.9.10"`.
 * Defaults to the binary {@link findNatsServer} picks.
 */
export async function natsServerVersion(binary?: string): Promise<string> {
  const path = requireNatsServer(binary);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(path, ['--version'], { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new NatsServerError('nats_server_start_failed', `${path} --version failed: ${error.message}`, { cause: error }));
      else resolve(`${stdout}${stderr}`);
    });
  });
  const match = /v?(\d+\.\d+\.\d+\S*)/.exec(output);
  if (!match?.[1]) {
    throw new NatsServerError('nats_server_start_failed', `${path} --version printed no version: ${output.trim()}`);
  }
  return match[1];
}
