/**
 * @packageDocumentation
 * TrustMesh secure mode: an agent's Ed25519 did:key is its NATS identity. The
 * mesh authority (NATS operator, account and system account) admits agents by
 * DID with a user JWT whose subject is the agent's key and whose permissions
 * come from one table; the agent connects by signing the server nonce with the
 * key that signs its frames; nats-server enforces who may publish and read
 * what; revocation closes the connection. See docs/security.md.
 *
 * @example
 * ```ts
 * import { createMeshAuthority, secureConnectOptions } from '@trustmesh/secure'
 * import { startNatsServer } from '@trustmesh/embedded-nats'
 * import { connect } from '@nats-io/transport-node'
 * import { generateKey } from '@trustmesh/protocol'
 * import { joinMesh } from '@trustmesh/client'
 *
 * const authority = await createMeshAuthority({ dir: './mesh', mesh: 'demo' })
 * const server = await startNatsServer({ extraConfig: authority.serverConfig() })
 * const key = generateKey()
 * const { jwt } = await authority.admit(key.did, { name: 'alice', role: 'agent' })
 * const alice = await joinMesh({ mesh: 'demo', name: 'alice', key,
 *   connection: await connect(secureConnectOptions(key, jwt, server.url)) })
 * ```
 */
export { createMeshAuthority, loadMeshAuthority, openMeshAuthority } from './authority.ts';
export { decodeUserJwt } from './claims.ts';
export type {
  MeshAuthority,
  MeshAuthorityInit,
  MeshFile,
  MeshMode,
  AdmitOptions,
  Admission,
  AdmissionRecord,
  AdmissionStatus,
  ServerConfigOptions,
  AccountPushResult,
} from './authority.ts';
export {
  agentAuthenticator,
  secureConnectOptions,
  connectAgent,
  identityFromJwt,
} from './connect.ts';
export { credsConnectOptions, formatCreds, writeCredsFile, loadCreds } from './creds.ts';
export type { JwtIdentity } from './connect.ts';
export { ROLES, PERMISSION_TABLE, renderPermissions, renderSubject, permissionTableMarkdown } from './permissions.ts';
export type { Role, Grant, RoleGrants, GrantContext } from './permissions.ts';
export { meshResources, kvStream, inboxPrefix } from './names.ts';
export { hardenBucket, readBucket, AGENT_WRITABLE_BUCKET } from './buckets.ts';
export type { BucketEntry } from './buckets.ts';
export type { MeshResources } from './names.ts';
export { userNkeyFromDid, userNkeyFromPublicKey, didFromUserNkey } from './nkeys.ts';
export { watchPermissionErrors, toPermissionDenied, explainDenied } from './watch.ts';
export type { DeniedContext } from './watch.ts';
export { openModeWarning, describeMode } from './mode.ts';
export { SecureModeError, PermissionDeniedError, SECURE_ERRORS } from './errors.ts';
export type { SecureErrorCode } from './errors.ts';
