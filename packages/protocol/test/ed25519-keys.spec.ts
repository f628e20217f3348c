import { createHash, createPublicKey, randomBytes, verify as rawNodeVerify } from 'node:crypto';
import * as noble from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import {
  didFromPublicKey,
  generateKey,
  KeyError,
  keyFromSeed,
  nobleEd25519,
  nodeEd25519,
  openFrame,
  publicKeyFromDid,
  SignerCache,
  signingInput,
  toHex,
  tryPublicKeyFromDid,
  type Ed25519Backend,
} from '../src/index.ts';
import { sealFrame } from '../src/internal.ts';

/**
 * docs/protocol.md §5, the public-key rule: a key whose y is not reduced
 * (y ≥ p) or that is a point of small order is refused where it is first
 * parsed, by both backends alike, and then verifies nothing. Every expectation
 * here is derived independently of the list in src/identity/ed25519.ts: the
 * small-order points come from noble's curve arithmetic ([L]P of random points).
 */

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const BACKENDS: Ed25519Backend[] = [nodeEd25519, nobleEd25519];
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function le(n: bigint, length = 32): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}
const leToBigInt = (b: Uint8Array) => b.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);
const withSign = (enc: Uint8Array, sign: 0 | 1) => {
  const out = Uint8Array.from(enc);
  out[31] = (out[31]! & 0x7f) | (sign << 7);
  return out;
};

/** The eight points of small order, as [i]T for a point T of order 8 found as [L]P of a random point P. */
function torsionPoints(): noble.Point[] {
  for (;;) {
    let p: noble.Point;
    try {
      p = noble.Point.fromBytes(randomBytes(32), false);
    } catch {
      continue; // not a point
    }
    const t = p.multiply(L - 1n, false).add(p); // [L]P: the torsion component of P
    if (t.multiply(4n, false).is0()) continue; // want order exactly 8
    return Array.from({ length: 8 }, (_, i) => (i === 0 ? noble.Point.ZERO : t.multiply(BigInt(i), false)));
  }
}
const TORSION = torsionPoints();

/** OpenSSL itself, without our key rule: what a receiver accepted before issue 6. */
function plainOpenSslVerifies(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    return rawNodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * A signature R || 0 under a small-order key A (given as its bytes and its
 * point): with S = 0 the cofactorless check wants R = −[k]A, which is one of
 * the eight torsion points, so trying each R succeeds about two times in three.
 */
function forgeForSmallOrderKey(keyBytes: Uint8Array, a: noble.Point, message: Uint8Array): Uint8Array | undefined {
  for (const r of TORSION) {
    const rBytes = r.toBytes();
    const k = leToBigInt(createHash('sha512').update(rBytes).update(keyBytes).update(message).digest()) % L;
    if (a.multiply(k, false).negate().equals(r)) return new Uint8Array([...rBytes, ...new Uint8Array(32)]);
  }
  return undefined;
}

describe('ed25519 public-key rule (§5)', () => {
  it('ed25519 - the eight small-order points are found independently and have five distinct y', () => {
    const ys = new Set(TORSION.map((t) => toHex(withSign(t.toBytes(), 0))));
    expect(ys.size).toBe(5);
    for (const t of TORSION) expect(t.multiply(8n, false).is0()).toBe(true);
  });

  for (const backend of BACKENDS) {
    it(`ed25519 - ${backend.name} refuses every encoding of every small-order point, with either sign bit`, () => {
      const cache = new SignerCache(backend, 64);
      for (const t of TORSION) {
        for (const sign of [0, 1] as const) {
          const pk = withSign(t.toBytes(), sign);
          expect(cache.get(pk).refused, toHex(pk)).toBe('a point of small order');
          const message = randomBytes(20);
          const forged = forgeForSmallOrderKey(pk, t, message) ?? new Uint8Array(64);
          expect(backend.verify(pk, message, forged)).toBe(false);
          expect(backend.prepare(pk)(message, forged)).toBe(false);
        }
      }
    });

    it(`ed25519 - ${backend.name} refuses every non-reduced y (p ≤ y < 2^255), with either sign bit`, () => {
      const cache = new SignerCache(backend, 64);
      for (let y = P; y < 2n ** 255n; y++) {
        for (const sign of [0, 1] as const) {
          const pk = withSign(le(y), sign);
          expect(cache.get(pk).refused, toHex(pk)).toBeDefined();
          expect(backend.verify(pk, new Uint8Array(1), new Uint8Array(64))).toBe(false);
        }
      }
    });

    it(`ed25519 - ${backend.name} accepts the keys of 300 random seeds and refuses none of them`, () => {
      const cache = new SignerCache(backend, 512);
      for (let i = 0; i < 300; i++) {
        const key = keyFromSeed(randomBytes(32), { backend: backend.name });
        const signer = cache.get(key.publicKey);
        expect(signer.refused).toBeUndefined();
        const message = randomBytes(i % 50);
        expect(signer.verify(message, key.sign(message))).toBe(true);
      }
    });
  }

  it('ed25519 - the forgery the rule stops is real: plain OpenSSL accepts R || 0 under each small-order key, both backends refuse it', () => {
    let forgeries = 0;
    for (const t of TORSION) {
      const pk = t.toBytes();
      for (let attempt = 0; attempt < 16; attempt++) {
        const message = new Uint8Array([attempt, ...pk]);
        const forged = forgeForSmallOrderKey(pk, t, message);
        if (forged === undefined) continue;
        expect(plainOpenSslVerifies(pk, message, forged)).toBe(true);
        for (const backend of BACKENDS) expect(backend.verify(pk, message, forged)).toBe(false);
        forgeries++;
        break;
      }
    }
    expect(forgeries).toBe(8);
  });

  it('ed25519 - a frame from a small-order key with a forged signature is bad_signature under both backends, and nothing throws', () => {
    const t = TORSION[3]!; // order 8
    const pk = t.toBytes();
    const did = didFromPublicKey(pk);
    // A stand-in AgentKey whose "signature" is the forgery over the signing input.
    const fake = {
      publicKey: pk,
      did,
      agentId: did.slice('did:key:'.length),
      sign: (message: Uint8Array) => forgeForSmallOrderKey(pk, t, message) ?? new Uint8Array(64),
      exportSeed: () => new Uint8Array(32),
    };
    let checked = 0;
    for (let i = 0; i < 32 && checked < 4; i++) {
      const body = new Uint8Array([0x81, 0xa1, 0x76, 0x01, 0xa1, 0x78, i]); // {v: 1, x: i}: the signature is checked first
      const frame = sealFrame(fake, body);
      const signature = frame.subarray(33, 97);
      if (!plainOpenSslVerifies(pk, signingInput(body), signature)) continue; // no forgery for this body
      for (const backend of BACKENDS) {
        const result = openFrame(frame, { backend });
        expect(result).toMatchObject({ ok: false, reason: 'bad_signature' });
      }
      checked++;
    }
    expect(checked).toBe(4);
  });

  it('ed25519 - a key is checked once per signer: 1,000 frames from one refused key cost one prepare', () => {
    let prepared = 0;
    const counting: Ed25519Backend = {
      ...nodeEd25519,
      prepare(publicKey) {
        prepared++;
        return nodeEd25519.prepare(publicKey);
      },
    };
    const cache = new SignerCache(counting, 16);
    const pk = TORSION[1]!.toBytes();
    for (let i = 0; i < 1000; i++) expect(cache.get(pk).verify(new Uint8Array([i & 0xff]), new Uint8Array(64))).toBe(false);
    expect(prepared).toBe(1);
  });
});

describe('did:key and the public-key rule', () => {
  it('did - the did:key of a small-order or non-reduced key is refused when parsed; encoding it still works', () => {
    const refused = [...TORSION.map((t) => t.toBytes()), le(P), le(P + 1n), withSign(le(P - 1n), 1), new Uint8Array(32)];
    for (const pk of refused) {
      const did = didFromPublicKey(pk); // encoding is total: receivers name any header key
      expect(did).toMatch(/^did:key:z6Mk/);
      expect(tryPublicKeyFromDid(did), toHex(pk)).toBeUndefined();
      expect(() => publicKeyFromDid(did)).toThrow(KeyError);
    }
  });

  it('did - keys from seeds decode from their DIDs as before', () => {
    for (let i = 0; i < 100; i++) {
      const key = generateKey();
      expect(toHex(tryPublicKeyFromDid(key.did)!)).toBe(toHex(key.publicKey));
    }
  });
});
