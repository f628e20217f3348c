/**
 * An Ed25519 did:key and a NATS user nkey are the same 32-byte key in two
 * encodings. The conversion uses the nkeys library's own codec (base32 with a
 * prefix byte and a CRC16), never a hand-written one.
 */
import { Codec } from '@nats-io/nkeys/lib/codec.js';
import { Prefix } from '@nats-io/nkeys';
import { didFromPublicKey, publicKeyFromDid, tryPublicKeyFromDid, type AgentKey } from '@trustmesh/protocol';
import { SecureModeError } from './errors.ts';

const text = new TextDecoder();
const bytes = new TextEncoder();

/** The NATS user public key (`U…`) of a 32-byte Ed25519 public key. */
export function userNkeyFromPublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new SecureModeError('invalid_argument', 'an Ed25519 public key is a Uint8Array of 32 bytes');
  }
  return text.decode(Codec.encode(Prefix.User, publicKey));
}

/** The NATS user public key (`U…`) of an Ed25519 `did:key`. */
export function userNkeyFromDid(did: string): string {
  if (tryPublicKeyFromDid(did) === undefined) {
    throw new SecureModeError('invalid_argument', `not an Ed25519 did:key: ${typeof did === 'string' ? did.slice(0, 80) : typeof did}`);
  }
  return userNkeyFromPublicKey(publicKeyFromDid(did));
}

/** The `did:key` of a NATS user public key (`U…`). */
export function didFromUserNkey(nkey: string): string {
  let raw: Uint8Array;
  try {
    raw = Codec.decode(Prefix.User, bytes.encode(nkey));
  } catch (cause) {
    throw new SecureModeError('invalid_argument', `not a NATS user public key: ${String(nkey).slice(0, 80)}`, { cause });
  }
  return didFromPublicKey(raw);
}

/** The agent's seed as an nkey user seed (`SU…`): what a creds file holds. Handle as a secret. */
export function userSeedFromKey(key: AgentKey): Uint8Array {
  return Codec.encodeSeed(Prefix.User, key.exportSeed());
}

/** The raw 32-byte Ed25519 seed inside an nkey user seed (`SU…`). */
export function rawSeedFromUserSeed(seed: Uint8Array): Uint8Array {
  const decoded = Codec.decodeSeed(seed);
  if (decoded.prefix !== Prefix.User) throw new SecureModeError('creds_invalid', 'the creds file holds a seed that is not a user seed');
  return decoded.buf;
}
