import { base58btcDecode, base58btcEncode } from '../util/bytes.ts';
import { PUBLIC_KEY_LENGTH, publicKeyProblem } from './ed25519.ts';
import { InvalidArgumentError, KeyError } from '../errors.ts';

/** did:key method prefix plus multibase 'z' (base58btc). */
const DID_KEY_PREFIX = 'did:key:z';
// Multicodec ed25519-pub (0xed) as an unsigned varint: 0xed 0x01.
const ED25519_MULTICODEC = [0xed, 0x01] as const;

/**
 * `z6Mk…`: the multibase part of an Ed25519 did:key; the agent's id in subjects.
 * Encoding is total: a receiver names the key of any frame header, even a key
 * that §5 refuses (its frames never verify).
 */
export function agentIdFromPublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LENGTH) {
    throw new InvalidArgumentError(`public key must be a Uint8Array of ${PUBLIC_KEY_LENGTH} bytes`);
  }
  const bytes = new Uint8Array(2 + PUBLIC_KEY_LENGTH);
  bytes.set(ED25519_MULTICODEC, 0);
  bytes.set(publicKey, 2);
  return 'z' + base58btcEncode(bytes);
}

export function didFromPublicKey(publicKey: Uint8Array): string {
  return 'did:key:' + agentIdFromPublicKey(publicKey);
}

/**
 * Decodes an Ed25519 did:key; undefined for anything else (never throws on
 * input), including the did:key of a public key that docs/protocol.md §5
 * refuses (non-canonical or of small order): such a DID names no usable agent,
 * since nothing it signs verifies, so it is refused where it is first parsed.
 */
export function tryPublicKeyFromDid(did: unknown): Uint8Array | undefined {
  if (typeof did !== 'string' || !did.startsWith(DID_KEY_PREFIX) || did.length > 64) return undefined;
  const bytes = base58btcDecode(did.slice(DID_KEY_PREFIX.length));
  if (bytes === undefined || bytes.length !== 2 + PUBLIC_KEY_LENGTH) return undefined;
  if (bytes[0] !== ED25519_MULTICODEC[0] || bytes[1] !== ED25519_MULTICODEC[1]) return undefined;
  const publicKey = bytes.slice(2);
  if (publicKeyProblem(publicKey) !== undefined) return undefined;
  // Only the canonical encoding is accepted, so one key has exactly one DID string.
  return didFromPublicKey(publicKey) === did ? publicKey : undefined;
}

export function publicKeyFromDid(did: string): Uint8Array {
  const key = tryPublicKeyFromDid(did);
  if (key === undefined)
    throw new KeyError(
      'invalid_did',
      `not the did:key of a usable Ed25519 public key (docs/protocol.md §2.2, §5): ${typeof did === 'string' ? did.slice(0, 80) : `a ${typeof did}`}`,
    );
  return key;
}

export function agentIdFromDid(did: string): string {
  publicKeyFromDid(did);
  return did.slice('did:key:'.length);
}

export function didFromAgentId(agentId: string): string {
  const did = 'did:key:' + agentId;
  publicKeyFromDid(did);
  return did;
}
