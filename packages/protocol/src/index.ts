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
export { REJECT_REASONS, isRejectReason, MESSAGE_TYPES, RESERVED_TYPE_PREFIX, ERROR_CODES } from './codes.ts';
export type { RejectReason, MessageType, ErrorCode } from './codes.ts';
export { TrustMeshError, FrameRejectedError, InvalidArgumentError, KeyError } from './errors.ts';
export type { KeyErrorCode } from './errors.ts';
export { toHex, fromHex, equalBytes, byteKey, base58btcEncode, base58btcDecode } from './util/bytes.ts';
export { nodeEd25519, nobleEd25519, ed25519Backend, SEED_LENGTH, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from './identity/ed25519.ts';
export type { Ed25519Backend } from './identity/ed25519.ts';
export {
  agentIdFromPublicKey,
  didFromPublicKey,
  tryPublicKeyFromDid,
  publicKeyFromDid,
  agentIdFromDid,
  didFromAgentId,
} from './identity/did.ts';
export { resolveDid } from './identity/resolve.ts';
export { SignerCache } from './identity/signers.ts';
export type { Signer } from './identity/signers.ts';
export { generateKey, keyFromSeed, saveKeyFile, loadKeyFile } from './identity/keys.ts';
export type { AgentKey, KeyOptions, KeyFile, SaveKeyOptions } from './identity/keys.ts';
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
} from './wire/frame.ts';
export type { FrameBody, FrameInit, SignedFrame, OpenedFrame, OpenResult, OpenOptions } from './wire/frame.ts';
export { ReplayGuard, DEFAULT_WINDOW_MS, DEFAULT_MAX_REPLAY_ENTRIES, DEFAULT_UNKNOWN_SHARE } from './wire/replay.ts';
export type { ReplayGuardInit, ReplayVerdict } from './wire/replay.ts';
export { StatelessVerifier, verifyStateless, blameFor } from './wire/stateless.ts';
export type { StatelessVerifierInit, StatelessResult, Verified, Rejected, Blame } from './wire/stateless.ts';
export { FrameVerifier } from './wire/verifier.ts';
export type { VerifierInit, VerifyContext, VerifyResult } from './wire/verifier.ts';
export {
  subjects,
  meshSubjects,
  meshBuckets,
  meshRoot,
  assertMeshName,
  assertToken,
  parseRoute,
  senderOfSubject,
  SUBJECT_ROOT,
  INBOX_KINDS,
} from './subjects/subjects.ts';
export type { SubjectKind, InboxKind, Route, MeshSubjects } from './subjects/subjects.ts';
// Delegation: capability tokens and chains (docs/delegation.md).
export { CHAIN_REJECT_REASONS, isChainRejectReason, DelegationError } from './delegation/codes.ts';
export type { ChainRejectReason, DelegationErrorCode } from './delegation/codes.ts';
export {
  MAX_PATTERN_LENGTH,
  MAX_SCOPE_PATTERNS,
  tryParsePattern,
  parsePattern,
  isValidPattern,
  patternWithin,
  scopeWithin,
  patternContains,
  isScopeWithin,
} from './delegation/pattern.ts';
export type { Pattern } from './delegation/pattern.ts';
export {
  TOKEN_VERSION,
  TOKEN_SIGNING_DOMAIN,
  TOKEN_HASH_DOMAIN,
  NONCE_LENGTH,
  HASH_LENGTH,
  MIN_TOKEN_BYTES,
  MAX_TOKEN_BYTES,
  decodeToken,
  tokenHash,
  tokenSigningInput,
} from './delegation/token.ts';
export type { CapabilityToken, TokenFields, DecodeResult } from './delegation/token.ts';
export { issueRootToken, delegate, DEFAULT_ROOT_DEPTH, DEFAULT_CLOCK_SKEW_MS } from './delegation/issue.ts';
export type { RootTokenInit, DelegateInit } from './delegation/issue.ts';
export { verifyChain, verifyEvidence, checkLink, TokenCache, DEFAULT_TOKEN_CACHE_SIZE } from './delegation/verify.ts';
export type {
  RootAuthority,
  VerifyChainOptions,
  ChainVerdict,
  ChainAccepted,
  ChainRejected,
  LinkViolation,
  EvidenceVerdict,
} from './delegation/verify.ts';
