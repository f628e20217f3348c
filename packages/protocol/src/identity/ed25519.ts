import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import * as noble from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { BoundedCache } from '../util/bounded-cache.ts';
import { byteKey, equalBytes, fromHex } from '../util/bytes.ts';
import { InvalidArgumentError } from '../errors.ts';

noble.hashes.sha512 = sha512;

export const SEED_LENGTH = 32;
export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

/**
 * One Ed25519 implementation (RFC 8032, pure Ed25519, no prehash, empty context)
 * under the verification rule of docs/protocol.md §5, which both backends apply
 * alike: a public key refused by {@link publicKeyProblem} verifies nothing; S
 * must be below L; and R must be, byte for byte, the encoding of [S]B − [k]A
 * (the cofactorless equation, which also makes a non-canonical R fail).
 * `verify` never throws on bad public keys or signatures: it returns false.
 */
export interface Ed25519Backend {
  readonly name: 'node' | 'noble';
  publicKeyFromSeed(seed: Uint8Array): Uint8Array;
  sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * Parses the public key once and returns its verify function, for callers
   * that cache per signer: the key checks of §5 run here, once per key, never
   * per frame. A refused key, or one that is not a curve point, yields a
   * function that always returns false. Never throws.
   */
  prepare(publicKey: Uint8Array): (message: Uint8Array, signature: Uint8Array) => boolean;
}

// DER prefixes of PKCS#8 (private) and SPKI (public) for OID 1.3.101.112 (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

// Group order L (RFC 8032 §5.1).
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/**
 * The y coordinates of the eight points of small order (the torsion subgroup:
 * [8]P is the identity), 32 bytes little-endian with the sign bit clear:
 * y = 1 (identity), y = p − 1 (order 2), y = 0 (order 4), and the two y of the
 * four points of order 8. test/ed25519-keys.spec.ts derives the list anew.
 */
const SMALL_ORDER_Y = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
].map(fromHex);

/**
 * Why a 32-byte public key is refused (docs/protocol.md §5), or undefined if it
 * is acceptable. Refused: a y coordinate that is not reduced (y ≥ p), and any
 * point of small order, whatever the sign bit (which also covers the
 * non-canonical x = 0 with sign bit 1). A key can still fail to be a curve point
 * at all: each backend finds that when it decodes the key.
 * A few byte comparisons: cheap enough to run on every fresh key of a flood.
 */
export function publicKeyProblem(publicKey: Uint8Array): string | undefined {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LENGTH) return `not ${PUBLIC_KEY_LENGTH} bytes`;
  const top = publicKey[31]! & 0x7f;
  // y ≥ p = 2^255 − 19: top byte 0x7f, bytes 30..1 all 0xff, byte 0 ≥ 0xed.
  if (top === 0x7f && publicKey[0]! >= 0xed) {
    let i = 1;
    while (i < 31 && publicKey[i] === 0xff) i++;
    if (i === 31) return 'y is not reduced modulo p (non-canonical encoding)';
  }
  for (const y of SMALL_ORDER_Y) {
    let i = 0;
    while (i < 31 && publicKey[i] === y[i]) i++;
    if (i === 31 && top === y[31]) return 'a point of small order';
  }
  return undefined;
}

function checkLength(name: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new InvalidArgumentError(`${name} must be a Uint8Array of ${length} bytes`);
  }
}

type Verify = (message: Uint8Array, signature: Uint8Array) => boolean;
const verifiesNothing: Verify = () => false;

/**
 * Parses a public key into its verify function; a refused key or one that is
 * not a curve point verifies nothing. OpenSSL already checks S < L and uses the
 * cofactorless equation with R compared as bytes; the key rule is ours.
 */
function prepareNode(publicKey: Uint8Array): Verify {
  if (publicKeyProblem(publicKey) !== undefined) return verifiesNothing;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  } catch {
    return verifiesNothing; // not a point on the curve
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
  const publicKeys = new BoundedCache<Verify>(16384);
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

function leToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/**
 * RFC 8032 §5.1.7 on noble's curve arithmetic, with the rule of §5 spelled out
 * rather than left to noble's options (whose strict mode uses the cofactored
 * equation, which OpenSSL does not): refused keys verify nothing, S < L, and
 * encode([S]B − [k]A) must equal R byte for byte, with k = SHA-512(R || A || M) mod L.
 */
function prepareNoble(publicKey: Uint8Array): Verify {
  if (publicKeyProblem(publicKey) !== undefined) return verifiesNothing;
  let minusA: noble.Point;
  try {
    minusA = noble.Point.fromBytes(publicKey, false).negate();
  } catch {
    return verifiesNothing; // not a point on the curve
  }
  const key = Uint8Array.from(publicKey);
  return (message, signature) => {
    if (signature.length !== SIGNATURE_LENGTH) return false;
    try {
      const s = leToBigInt(signature.subarray(32));
      if (s >= L) return false;
      const r = signature.subarray(0, 32);
      const hash = sha512.create().update(r).update(key).update(message).digest();
      const k = leToBigInt(hash) % L;
      const check = noble.Point.BASE.multiply(s, false).add(minusA.multiply(k, false));
      return equalBytes(check.toBytes(), r);
    } catch {
      return false;
    }
  };
}

function createNobleBackend(): Ed25519Backend {
  // Decoding a point costs a square root: parsed keys are kept (bounded), as in the node backend.
  const publicKeys = new BoundedCache<Verify>(16384);
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
    prepare: prepareNoble,
    verify(publicKey, message, signature) {
      if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LENGTH) return false;
      return publicKeys.getOrCreate(byteKey(publicKey), () => prepareNoble(publicKey))(message, signature);
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
