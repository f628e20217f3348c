import { TrustMeshError } from '../errors.ts';

/**
 * Why a capability chain is refused: exactly one of these codes, in the order
 * of the checks of docs/delegation.md §6. The table is normative.
 */
export const CHAIN_REJECT_REASONS = {
  bad_token: 'a link is malformed (length, version, times, scope encoding), or the chain is empty',
  unknown_root: "the root's issuer holds no capability in the mesh configuration that contains the root's scope",
  not_yet_valid: "the verifier's clock is before a link's not-before",
  expired: "the verifier's clock is at or after a link's expiry",
  wrong_audience: "the last link's audience is not the executor",
  capability_not_granted: "the required capability is not within the last link's scope",
  bad_signature: "a link's Ed25519 signature does not verify under its issuer's key",
  broken_link: "a link's parent hash is not the previous link's hash, or its issuer is not the previous link's audience",
  expiry_extended: "a link's validity reaches outside its parent's (later expiry or earlier not-before)",
  depth_exceeded: "a link's depth is not below its parent's, or the chain is longer than the verifier's maximum depth allows",
  scope_escalation: "a link's scope is not within its parent's",
} as const;

export type ChainRejectReason = keyof typeof CHAIN_REJECT_REASONS;

export const isChainRejectReason = (value: unknown): value is ChainRejectReason =>
  typeof value === 'string' && Object.hasOwn(CHAIN_REJECT_REASONS, value);

/** What {@link DelegationError} can refuse at the call site. */
export type DelegationErrorCode = 'scope_escalation' | 'expiry_extended' | 'depth_exceeded' | 'broken_link';

/**
 * Thrown by `delegate()` when the caller asks for a token the chain rules
 * would reject: a wider scope, a longer validity, more depth, or a delegator
 * that is not the parent's audience. Misuse, not attacker input.
 */
export class DelegationError extends TrustMeshError {
  declare readonly code: DelegationErrorCode;
  constructor(code: DelegationErrorCode, message: string) {
    super(code, `delegation refused (${code}): ${message}`);
    this.name = 'DelegationError';
  }
}
