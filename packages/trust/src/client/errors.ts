import { TrustMeshError } from '@trustmesh/protocol';
import type { Tier } from '../tiers.ts';

/** Sending to, requesting or delegating to a peer whose cached score is below the refuse line. */
export class UntrustedPeerError extends TrustMeshError {
  declare readonly code: 'untrusted';
  constructor(
    readonly did: string,
    readonly score: number,
    readonly tier: Tier,
  ) {
    super('untrusted', `peer ${did} is ${tier} (score ${score}); nothing is sent to it`);
    this.name = 'UntrustedPeerError';
  }
}
