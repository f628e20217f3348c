/**
 * @packageDocumentation
 * The TrustMesh wire protocol, pure: did:key identities, signed frames, the
 * replay guard and subject layout. No NATS import. The normative description
 * is docs/protocol.md.
 *
 * @example
 * ```ts
 * import { generateKey, signFrame, FrameVerifier, subjects } from '@trustmesh/protocol'
 * const alice = generateKey(), bob = generateKey()
 * const sub = subjects.message('demo', bob.agentId, alice.agentId)
 * const { bytes } = signFrame(alice, { sub, typ: 'greet', data: { hi: 'bob' } })
 * const result = new FrameVerifier({ self: bob.did }).verify(bytes, { subject: sub })
 * if (result.ok) console.log(result.frame.iss, result.frame.data)
 * else console.log('rejected:', result.reason)
 * ```
 */
export { REJECT_REASONS, isRejectReason, TrustMeshError, FrameRejectedError, InvalidArgumentError, KeyError } from './errors.ts';
export type { RejectReason, KeyErrorCode } from './errors.ts';
export { toHex, fromHex, equalBytes, byteKey, base58btcEncode, base58btcDecode } from './bytes.ts';
export { nodeEd25519, nobleEd25519, ed25519Backend, SEED_LENGTH, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from './ed25519.ts';
export type { Ed25519Backend } from './ed25519.ts';
export {
  agentIdFromPublicKey,
  didFromPublicKey,
  tryPublicKeyFromDid,
  publicKeyFromDid,
  agentIdFromDid,
  didFromAgentId,
  resolveDid,
} from './did.ts';
export { SignerCache } from './signers.ts';
export type { Signer } from './signers.ts';
export { generateKey, keyFromSeed, saveKeyFile, loadKeyFile } from './keys.ts';
export type { AgentKey, KeyOptions, KeyFile, SaveKeyOptions } from './keys.ts';
export {
  FRAME_VERSION,
  HEADER_LENGTH,
  SIGNING_DOMAIN,
  ID_LENGTH,
  DEFAULT_MAX_FRAME_BYTES,
  MAX_TYPE_LENGTH,
  MAX_SUBJECT_LENGTH,
  signFrame,
  openFrame,
  signingInput,
} from './frame.ts';
export type { FrameBody, FrameInit, SignedFrame, OpenedFrame, OpenResult, OpenOptions } from './frame.ts';
export { ReplayGuard, DEFAULT_WINDOW_MS, DEFAULT_MAX_REPLAY_ENTRIES } from './replay.ts';
export type { ReplayGuardInit, ReplayVerdict } from './replay.ts';
export { FrameVerifier } from './verifier.ts';
export type { VerifierInit, VerifyContext, VerifyResult } from './verifier.ts';
export { subjects, meshRoot, assertMeshName, parseSubject, senderOfSubject, SUBJECT_ROOT } from './subjects.ts';
export type { SubjectKind, ParsedSubject } from './subjects.ts';
