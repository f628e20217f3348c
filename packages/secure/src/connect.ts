import { encode as encodeSignature } from '@nats-io/nkeys';
import {
  AuthorizationError,
  connect,
  UserAuthenticationExpiredError,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import type { AgentKey } from '@trustmesh/protocol';
import { decodeUserJwt } from './claims.ts';
import { SecureModeError } from './errors.ts';
import { inboxPrefix } from './names.ts';
import { userNkeyFromPublicKey } from './nkeys.ts';
import type { GrantContext, Role } from './permissions.ts';
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
