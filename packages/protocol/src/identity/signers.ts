import { BoundedCache } from '../util/bounded-cache.ts';
import { byteKey } from '../util/bytes.ts';
import { agentIdFromPublicKey } from './did.ts';
import { nodeEd25519, PUBLIC_KEY_LENGTH, publicKeyProblem, type Ed25519Backend } from './ed25519.ts';

/** Everything a receiver derives from a signer's public key, derived once. */
export interface Signer {
  /** `did:key:z6Mk…` of the key. */
  readonly did: string;
  /** `z6Mk…`: the key's agent id (last token of the subjects it publishes on). */
  readonly agentId: string;
  /** The key's 32 bytes as a latin1 string: a cheap exact Map key. */
  readonly keyId: string;
  /**
   * Why the key is refused (docs/protocol.md §5: not reduced, or of small
   * order), if it is. A refused key's `verify` always returns false, so its
   * frames are rejected as `bad_signature`; this only explains why.
   */
  readonly refused?: string;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * Bounded memo of signers. Receivers see the same few keys over and over;
 * parsing the key, encoding its DID and turning it into a map key then happen
 * once per key instead of once per frame, and so do the key checks of §5
 * (refused keys are remembered like any other). The bound keeps a flood of
 * fresh keys from growing memory (the oldest entry goes first).
 */
export class SignerCache {
  private readonly entries: BoundedCache<Signer>;
  constructor(
    private readonly backend: Ed25519Backend = nodeEd25519,
    limit = 16384,
  ) {
    this.entries = new BoundedCache(limit);
  }

  get size(): number {
    return this.entries.size;
  }

  /** `publicKey` must be 32 bytes (the frame header guarantees it). Never throws for bad points. */
  get(publicKey: Uint8Array): Signer {
    const keyId = byteKey(publicKey);
    return this.entries.getOrCreate(keyId, () => {
      if (publicKey.length !== PUBLIC_KEY_LENGTH) throw new RangeError(`public key must be ${PUBLIC_KEY_LENGTH} bytes`);
      const agentId = agentIdFromPublicKey(publicKey);
      const signer: { -readonly [K in keyof Signer]: Signer[K] } = {
        did: 'did:key:' + agentId,
        agentId,
        keyId,
        verify: this.backend.prepare(publicKey),
      };
      const refused = publicKeyProblem(publicKey);
      if (refused !== undefined) signer.refused = refused;
      return signer;
    });
  }
}
