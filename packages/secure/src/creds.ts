import { fmtCreds, parseCreds } from '@nats-io/jwt';
import { fromSeed } from '@nats-io/nkeys';
import type { ConnectionOptions } from '@nats-io/transport-node';
import { keyFromSeed, type AgentKey } from '@trustmesh/protocol';
import { secureConnectOptions } from './connect.ts';
import { SecureModeError } from './errors.ts';
import { readSecretFile, writeFileAtomic } from './files.ts';
import { rawSeedFromUserSeed, userNkeyFromPublicKey, userSeedFromKey } from './nkeys.ts';

const encoder = new TextEncoder();

/** A creds file's content for an agent: its JWT and its Ed25519 seed as an nkey user seed (a secret: mode 0600). */
export function formatCreds(key: AgentKey, jwt: string): Uint8Array {
  const pair = fromSeed(userSeedFromKey(key));
  try {
    return fmtCreds(jwt, pair);
  } finally {
    pair.clear();
  }
}

/** Writes {@link formatCreds} to `path` with mode 0600 (temp file with O_EXCL|O_NOFOLLOW, then rename). */
export async function writeCredsFile(path: string, key: AgentKey, jwt: string): Promise<void> {
  await writeFileAtomic(path, formatCreds(key, jwt));
}

/**
 * The agent key and JWT of a creds file (content, or a path read with the
 * 0600 check). The key signs frames and authenticates the connection alike.
 */
export async function loadCreds(creds: Uint8Array | string): Promise<{ key: AgentKey; jwt: string }> {
  const content = typeof creds === 'string' ? await readSecretFile(creds) : creds;
  let parsed: Awaited<ReturnType<typeof parseCreds>>;
  try {
    parsed = await parseCreds(content);
  } catch (cause) {
    throw new SecureModeError('creds_invalid', 'not a creds file (a user JWT and a user nkey seed)', { cause });
  }
  const key = keyFromSeed(rawSeedFromUserSeed(encoder.encode(parsed.key)));
  if (userNkeyFromPublicKey(key.publicKey) !== parsed.uc.sub) {
    throw new SecureModeError('key_mismatch', `the creds file's seed is not the key its JWT admits (${parsed.uc.sub})`);
  }
  return { key, jwt: parsed.jwt };
}

/** {@link secureConnectOptions} from a creds file (content or path), and the agent key to join the mesh with. */
export async function credsConnectOptions(
  creds: Uint8Array | string,
  servers: string | string[],
  extra: Omit<ConnectionOptions, 'servers' | 'authenticator'> = {},
): Promise<{ key: AgentKey; options: ConnectionOptions }> {
  const { key, jwt } = await loadCreds(creds);
  return { key, options: secureConnectOptions(key, jwt, servers, extra) };
}
