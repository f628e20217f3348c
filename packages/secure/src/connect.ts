import { encode as encodeSignature } from '@nats-io/nkeys';
import { fmtCreds, parseCreds } from '@nats-io/jwt';
import { fromSeed } from '@nats-io/nkeys';
import {
  AuthorizationError,
  connect,
  UserAuthenticationExpiredError,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { keyFromSeed, type AgentKey } from '@trustmesh/protocol';
import { decodeUserJwt } from './authority.ts';
import { SecureModeError } from './errors.ts';
import { readSecretFile, writeFileAtomic } from './files.ts';
import { inboxPrefix } from './names.ts';
import { rawSeedFromUserSeed, userNkeyFromPublicKey, userSeedFromKey } from './nkeys.ts';
import type { GrantContext } from './permissions.ts';
import type { Role } from './permissions.ts';
import { agentIdFromUserNkey, readJwtTags } from './tags.ts';

const encoder = new TextEncoder();

/** What a user JWT says about the connection it admits. */
export interface JwtIdentity extends GrantContext {
  role: Role;
  /** The agent's NATS user public key (`U…`). */
  userNkey: string;
  name: string;
  /** ms since epoch, when the JWT expires. */
  expiresAt?: number;
}

/** The mesh, role, agent id and expiry a TrustMesh user JWT carries. */
export function identityFromJwt(jwt: string): JwtIdentity {
  const claims = decodeUserJwt(jwt);
  const { mesh, role } = readJwtTags(claims.nats.tags);
  return {
    mesh,
    role,
    agentId: agentIdFromUserNkey(claims.sub),
    userNkey: claims.sub,
    name: claims.name,
    ...(claims.exp !== undefined && { expiresAt: claims.exp * 1000 }),
  };
}

/**
 * A nats.js authenticator for an admitted agent: it presents `jwt` and signs
 * the server's nonce with the agent's own Ed25519 key, the key that signs its
 * frames. The seed never leaves the {@link AgentKey}. Throws `key_mismatch`
 * when the JWT was issued to another key.
 */
export function agentAuthenticator(key: AgentKey, jwt: string): Authenticator {
  const nkey = userNkeyFromPublicKey(key.publicKey);
  const claims = decodeUserJwt(jwt);
  if (claims.sub !== nkey) {
    throw new SecureModeError('key_mismatch', `the JWT admits ${claims.sub}, but this key is ${nkey} (${key.did})`);
  }
  return (nonce?: string) => ({
    jwt,
    nkey,
    sig: nonce === undefined ? '' : encodeSignature(key.sign(encoder.encode(nonce))),
  });
}

/**
 * nats.js connection options for an admitted agent: `servers`, the
 * {@link agentAuthenticator}, and its private `inboxPrefix`
 * (`_tm.<mesh>.inbox.<agentId>`, the only reply inbox it may read). Use as
 * `joinMesh({ connection: await connect(secureConnectOptions(key, jwt, servers)), key, ... })`.
 * `extra` is merged last (reconnect settings, a name).
 */
export function secureConnectOptions(
  key: AgentKey,
  jwt: string,
  servers: string | string[],
  extra: Omit<ConnectionOptions, 'servers' | 'authenticator'> = {},
): ConnectionOptions {
  const identity = identityFromJwt(jwt);
  return {
    servers,
    name: identity.name,
    inboxPrefix: inboxPrefix(identity.mesh, identity.agentId),
    ...extra,
    authenticator: agentAuthenticator(key, jwt),
  };
}

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

/**
 * Connects an admitted agent ({@link secureConnectOptions}). A refusal by the
 * server becomes a `SecureModeError` with code `not_admitted` that says what
 * the possible reasons are (the server does not tell which).
 */
export async function connectAgent(
  key: AgentKey,
  jwt: string,
  servers: string | string[],
  extra: Omit<ConnectionOptions, 'servers' | 'authenticator'> = {},
): Promise<NatsConnection> {
  const options = secureConnectOptions(key, jwt, servers, extra);
  try {
    return await connect(options);
  } catch (cause) {
    if (cause instanceof AuthorizationError || cause instanceof UserAuthenticationExpiredError) {
      const { mesh, expiresAt } = identityFromJwt(jwt);
      const expired = expiresAt !== undefined && expiresAt <= Date.now() ? ` Its JWT expired at ${new Date(expiresAt).toISOString()}.` : '';
      throw new SecureModeError(
        'not_admitted',
        `nats-server refused ${key.did} on mesh ${mesh} (${cause.message}): the key was never admitted by this mesh's operator, its JWT expired, or it was revoked.${expired}`,
        { cause },
      );
    }
    throw cause;
  }
}
