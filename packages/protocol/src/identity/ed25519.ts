import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import * as noble from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { BoundedCache } from '../util/bounded-cache.ts';
import { byteKey } from '../util/bytes.ts';
import { InvalidArgumentError } from '../errors.ts';

noble.hashes.sha512 = sha512;

export const SEED_LENGTH = 32;
export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

/**
 * One Ed25519 implementation (RFC 8032, pure Ed25519, no prehash, empty context).
 * `verify` never throws on bad public keys or signatures: it returns false.
 */
export interface Ed25519Backend {
  readonly name: 'node' | 'noble';
  publicKeyFromSeed(seed: Uint8Array): Uint8Array;
  sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * Parses the public key once and returns its verify function, for callers
   * that cache per signer. A key that is not a valid point yields a function
   * that always returns false.
   */
  prepare(publicKey: Uint8Array): (message: Uint8Array, signature: Uint8Array) => boolean;
}

// DER prefixes of PKCS#8 (private) and SPKI (public) for OID 1.3.101.112 (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function checkLength(name: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new InvalidArgumentError(`${name} must be a Uint8Array of ${length} bytes`);
  }
}

/** Parses a public key into its verify function; a key that is not a curve point verifies nothing. */
function prepareNode(publicKey: Uint8Array): (message: Uint8Array, signature: Uint8Array) => boolean {
  let key: KeyObject;
  try {
    if (publicKey.length !== PUBLIC_KEY_LENGTH) return () => false;
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  } catch {
    return () => false; // not a point on the curve
  }
  return (message, signature) => {
    if (signature.length !== SIGNATURE_LENGTH) return false;
    try {
      return nodeVerify(null, message, key, signature);
    } catch {
      return false;
    }
  };
}

function createNodeBackend(): Ed25519Backend {
  // Parsing DER costs about a third of a verify, so parsed keys are kept (bounded).
  const privateKeys = new BoundedCache<KeyObject>(1024);
  const publicKeys = new BoundedCache<(message: Uint8Array, signature: Uint8Array) => boolean>(16384);
  const privateKeyOf = (seed: Uint8Array) =>
    privateKeys.getOrCreate(byteKey(seed), () =>
      createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }),
    );
  return {
    name: 'node',
    publicKeyFromSeed(seed) {
      checkLength('seed', seed, SEED_LENGTH);
      const der = createPublicKey(privateKeyOf(seed)).export({ format: 'der', type: 'spki' });
      return new Uint8Array(der.subarray(SPKI_PREFIX.length));
    },
    sign(seed, message) {
      checkLength('seed', seed, SEED_LENGTH);
      return new Uint8Array(nodeSign(null, message, privateKeyOf(seed)));
    },
    prepare: prepareNode,
    verify(publicKey, message, signature) {
      return publicKeys.getOrCreate(byteKey(publicKey), () => prepareNode(publicKey))(message, signature);
    },
  };
}

function createNobleBackend(): Ed25519Backend {
  return {
    name: 'noble',
    publicKeyFromSeed(seed) {
      checkLength('seed', seed, SEED_LENGTH);
      return noble.getPublicKey(seed);
    },
    sign(seed, message) {
      checkLength('seed', seed, SEED_LENGTH);
      return noble.sign(message, seed);
    },
    prepare(publicKey) {
      const key = Uint8Array.from(publicKey);
      return (message, signature) => this.verify(key, message, signature);
    },
    verify(publicKey, message, signature) {
      if (publicKey.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false;
      try {
        // zip215: false = strict RFC 8032 / FIPS 186-5 rules, matching OpenSSL's acceptance.
        return noble.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    },
  };
}

/** node:crypto (OpenSSL) with cached key objects: the hot path. */
export const nodeEd25519: Ed25519Backend = createNodeBackend();
/** @noble/ed25519: portable, and an independent implementation to cross-check against. */
export const nobleEd25519: Ed25519Backend = createNobleBackend();

export function ed25519Backend(name: 'node' | 'noble' = 'node'): Ed25519Backend {
  return name === 'noble' ? nobleEd25519 : nodeEd25519;
}
