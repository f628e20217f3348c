import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  agentIdFromDid,
  agentIdFromPublicKey,
  base58btcDecode,
  base58btcEncode,
  SignerCache,
  didFromAgentId,
  didFromPublicKey,
  fromHex,
  InvalidArgumentError,
  KeyError,
  nodeEd25519,
  nobleEd25519,
  publicKeyFromDid,
  resolveDid,
  toHex,
  tryPublicKeyFromDid,
} from '../src/index.ts';

// The Ed25519 example of the W3C did:key method specification
// (https://w3c-ccg.github.io/did-method-key/).
const W3C_DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
// Its public key bytes, as key-did-resolver reports them (publicKeyBase58 decoded).
const W3C_KEY_HEX = '2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6';

/** did:key for arbitrary multicodec bytes, built by hand (not with the code under test's DID functions). */
const didOfBytes = (bytes: Uint8Array) => 'did:key:z' + base58btcEncode(bytes);
const withPrefix = (prefix: number[], key: Uint8Array) => new Uint8Array([...prefix, ...key]);

interface VerificationMethod {
  id: string;
  type: string;
  controller: string;
  publicKeyBase58?: string;
  publicKeyMultibase?: string;
}

/** The Ed25519 key of a resolved DID document, whichever property the resolver uses. */
function keyOfDocument(vm: VerificationMethod): Uint8Array | undefined {
  if (vm.publicKeyBase58 !== undefined) return base58btcDecode(vm.publicKeyBase58);
  if (vm.publicKeyMultibase?.startsWith('z')) {
    const bytes = base58btcDecode(vm.publicKeyMultibase.slice(1));
    // Multikey form carries the multicodec prefix.
    return bytes !== undefined && bytes[0] === 0xed && bytes[1] === 0x01 ? bytes.slice(2) : bytes;
  }
  return undefined;
}

describe('did:key known vector', () => {
  it('did - the W3C did:key example decodes to its key and re-encodes to the same DID', () => {
    const key = publicKeyFromDid(W3C_DID);
    expect(toHex(key)).toBe(W3C_KEY_HEX);
    expect(didFromPublicKey(key)).toBe(W3C_DID);
    expect(agentIdFromPublicKey(key)).toBe('z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK');
    expect(agentIdFromDid(W3C_DID)).toBe('z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK');
    expect(didFromAgentId('z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK')).toBe(W3C_DID);
  });

  it('did - resolveDid on the W3C example yields a document whose key equals our decoded bytes', async () => {
    const result = await resolveDid(W3C_DID);
    expect(result.didResolutionMetadata.error).toBeUndefined();
    const doc = result.didDocument!;
    expect(doc.id).toBe(W3C_DID);
    const vm = doc.verificationMethod![0] as VerificationMethod;
    expect(vm.controller).toBe(W3C_DID);
    expect(vm.id.startsWith(W3C_DID + '#')).toBe(true);
    const key = keyOfDocument(vm);
    expect(key).toBeDefined();
    expect(toHex(key!)).toBe(toHex(publicKeyFromDid(W3C_DID)));
  });

  it('did - RFC 8032 TEST 1 public key has the DID given in docs/protocol.md, and resolveDid agrees', async () => {
    const key = fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const did = 'did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw';
    expect(didFromPublicKey(key)).toBe(did);
    const vm = (await resolveDid(did)).didDocument!.verificationMethod![0] as VerificationMethod;
    expect(toHex(keyOfDocument(vm)!)).toBe(toHex(key));
  });

  it('did - the did:key prefix of an Ed25519 key is z6Mk (multicodec 0xed 0x01), 56 chars with a 48-char agent id', () => {
    for (let i = 0; i < 50; i++) {
      const did = didFromPublicKey(randomBytes(32));
      expect(did.startsWith('did:key:z6Mk')).toBe(true);
      expect(did.length).toBe(56);
      expect(agentIdFromDid(did).length).toBe(48);
      expect(base58btcDecode(did.slice('did:key:z'.length))!.subarray(0, 2)).toEqual(new Uint8Array([0xed, 0x01]));
    }
  });
});

describe('did:key agreement with did-resolver + key-did-resolver', () => {
  it('did - for 1,000 random keys our encoder/decoder agree with resolveDid()', async () => {
    const keys: Uint8Array[] = [];
    // A few keys whose first byte is zero, so publicKeyBase58 starts with '1'.
    while (keys.length < 4) {
      const key = nodeEd25519.publicKeyFromSeed(randomBytes(32));
      if (key[0] === 0) keys.push(key);
    }
    while (keys.length < 1000) keys.push(nodeEd25519.publicKeyFromSeed(randomBytes(32)));

    const results = await Promise.all(keys.map((key) => resolveDid(didFromPublicKey(key))));
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const did = didFromPublicKey(key);
      const { didDocument, didResolutionMetadata } = results[i]!;
      expect(didResolutionMetadata.error).toBeUndefined();
      expect(didDocument?.id).toBe(did);
      const vm = didDocument!.verificationMethod![0] as VerificationMethod;
      expect(vm.controller).toBe(did);
      const resolved = keyOfDocument(vm);
      expect(resolved && toHex(resolved)).toBe(toHex(key));
      expect(toHex(publicKeyFromDid(did))).toBe(toHex(key));
    }
  });

  it('did - a truncated did:key is refused by our decoder, and resolveDid reports an error for an empty one', async () => {
    const bad = didOfBytes(withPrefix([0xed, 0x01], new Uint8Array(31).fill(7)));
    expect(tryPublicKeyFromDid(bad)).toBeUndefined();
    const result = await resolveDid('did:key:z');
    expect(result.didDocument).toBeNull();
    expect(result.didResolutionMetadata.error).toBeDefined();
  });
});

describe('did:key canonical-only decoding', () => {
  const key = nodeEd25519.publicKeyFromSeed(fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
  const did = didFromPublicKey(key);

  it('did - tryPublicKeyFromDid accepts the canonical form and returns a copy of the key', () => {
    const decoded = tryPublicKeyFromDid(did);
    expect(decoded && toHex(decoded)).toBe(toHex(key));
    // Built by hand: the same bytes with the ed25519-pub multicodec.
    expect(didOfBytes(withPrefix([0xed, 0x01], key))).toBe(did);
  });

  it('did - tryPublicKeyFromDid returns undefined for a wrong prefix', () => {
    const mb = did.slice('did:key:'.length);
    for (const bad of [
      'did:web:' + mb,
      'did:key:' + mb.slice(1), // no multibase 'z'
      'did:key:f' + toHex(withPrefix([0xed, 0x01], key)), // base16 multibase
      'did:key:m' + Buffer.from(withPrefix([0xed, 0x01], key)).toString('base64'),
      'DID:key:' + mb,
      'did:KEY:' + mb,
      'did:key:' + mb + '#' + mb,
      ' ' + did,
      mb,
    ]) {
      expect(tryPublicKeyFromDid(bad), bad).toBeUndefined();
    }
  });

  it('did - tryPublicKeyFromDid returns undefined for another multicodec', () => {
    // x25519-pub 0xec, secp256k1-pub 0xe7 (33 bytes), p256-pub 0x1200, and a one-byte 0xed prefix.
    expect(tryPublicKeyFromDid(didOfBytes(withPrefix([0xec, 0x01], key)))).toBeUndefined();
    expect(tryPublicKeyFromDid(didOfBytes(withPrefix([0xe7, 0x01], new Uint8Array([2, ...key]))))).toBeUndefined();
    expect(tryPublicKeyFromDid(didOfBytes(withPrefix([0x80, 0x24], new Uint8Array([2, ...key]))))).toBeUndefined();
    expect(tryPublicKeyFromDid(didOfBytes(withPrefix([0xed, 0x00], key)))).toBeUndefined();
    expect(tryPublicKeyFromDid(didOfBytes(withPrefix([0xee, 0x01], key)))).toBeUndefined();
    expect(tryPublicKeyFromDid(didOfBytes(withPrefix([0xed], new Uint8Array([...key, 0]))))).toBeUndefined();
  });

  it('did - tryPublicKeyFromDid returns undefined for a key of the wrong length', () => {
    for (const n of [0, 1, 16, 31, 33, 64]) {
      const bytes = new Uint8Array(n).fill(0x42);
      expect(tryPublicKeyFromDid(didOfBytes(withPrefix([0xed, 0x01], bytes))), `length ${n}`).toBeUndefined();
    }
    // A leading zero before the multicodec: same key, non-canonical string.
    expect(tryPublicKeyFromDid(didOfBytes(new Uint8Array([0, 0xed, 0x01, ...key])))).toBeUndefined();
    expect(tryPublicKeyFromDid('did:key:z1' + did.slice('did:key:z'.length))).toBeUndefined();
  });

  it('did - tryPublicKeyFromDid returns undefined for characters outside base58btc', () => {
    const body = did.slice('did:key:z'.length);
    for (const c of ['0', 'O', 'I', 'l', '+', '/', '=', '_', '-', ' ', '\n', '\u00e9', '\u0000']) {
      const bad = 'did:key:z' + body.slice(0, 10) + c + body.slice(11);
      expect(tryPublicKeyFromDid(bad), JSON.stringify(c)).toBeUndefined();
    }
    expect(tryPublicKeyFromDid(did + '\n')).toBeUndefined();
    expect(tryPublicKeyFromDid(did + ' ')).toBeUndefined();
    expect(tryPublicKeyFromDid(did + '1')).toBeUndefined();
    expect(tryPublicKeyFromDid(did.toLowerCase())).toBeUndefined();
    expect(tryPublicKeyFromDid(did + 'x'.repeat(10_000))).toBeUndefined();
  });

  it('did - tryPublicKeyFromDid returns undefined for non-strings without throwing', () => {
    const values: unknown[] = [
      undefined,
      null,
      0,
      42,
      true,
      {},
      [],
      key,
      [did],
      new String(did),
      Symbol('x'),
      10n,
      () => did,
      { toString: () => did },
    ];
    for (const value of values) expect(tryPublicKeyFromDid(value)).toBeUndefined();
  });

  it('did - publicKeyFromDid, agentIdFromDid and didFromAgentId throw KeyError invalid_did on bad input', () => {
    for (const fn of [
      () => publicKeyFromDid('did:key:zzz'),
      () => agentIdFromDid('did:web:example.com'),
      () => didFromAgentId('z6MkNOPE'),
      () => publicKeyFromDid(undefined as unknown as string),
    ]) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(KeyError);
      expect((caught as KeyError).code).toBe('invalid_did');
    }
  });

  it('did - agentIdFromPublicKey throws InvalidArgumentError for keys that are not 32 bytes', () => {
    for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), 'abc', Array.from(key)]) {
      expect(() => agentIdFromPublicKey(bad as Uint8Array)).toThrow(InvalidArgumentError);
      expect(() => didFromPublicKey(bad as Uint8Array)).toThrow(InvalidArgumentError);
    }
  });

  it('did - one key has exactly one DID: decode(encode(k)) = k for 2,000 random keys', () => {
    for (let i = 0; i < 2000; i++) {
      const k = randomBytes(32);
      if (i < 3) k.fill(0, 0, 8 * (i + 1)); // leading zero bytes in the key
      const d = didFromPublicKey(k);
      expect(toHex(publicKeyFromDid(d))).toBe(toHex(k));
      expect(didFromAgentId(agentIdFromDid(d))).toBe(d);
    }
    // The all-zero key (small order) and the all-0xff key (y >= p) have DID strings, but §2.2 refuses to decode them.
    expect(tryPublicKeyFromDid(didFromPublicKey(new Uint8Array(32)))).toBeUndefined();
    expect(tryPublicKeyFromDid(didFromPublicKey(new Uint8Array(32).fill(0xff)))).toBeUndefined();
  });
});

describe('SignerCache', () => {
  it('did - SignerCache returns the same DID and agent id as didFromPublicKey, also after evictions', () => {
    const cache = new SignerCache(nodeEd25519, 3);
    const keys = Array.from({ length: 10 }, () => randomBytes(32));
    for (let round = 0; round < 3; round++) {
      for (const k of keys) {
        expect(cache.get(k).did).toBe(didFromPublicKey(k));
        expect(cache.get(k).agentId).toBe(didFromPublicKey(k).slice('did:key:'.length));
      }
    }
    expect(cache.size).toBe(3);
    // A key that is a view into a larger buffer.
    const big = randomBytes(64);
    expect(cache.get(big.subarray(16, 48)).did).toBe(didFromPublicKey(Uint8Array.from(big.subarray(16, 48))));
  });

  it('did - a SignerCache verify for a key that is not a curve point returns false, never throws', () => {
    // y = 2 has no x on the curve (RFC 8032 5.1.3 decoding fails).
    const notAPoint = new Uint8Array(32);
    notAPoint[0] = 2;
    for (const backend of [nodeEd25519, nobleEd25519]) {
      const signer = new SignerCache(backend).get(notAPoint);
      expect(signer.verify(new Uint8Array([1]), new Uint8Array(64))).toBe(false);
    }
  });
});

describe('base58btc', () => {
  it('base58 - known vectors (draft-msporny-base58)', () => {
    expect(base58btcEncode(Buffer.from('Hello World!'))).toBe('2NEpo7TZRRrLZSi2U');
    expect(base58btcEncode(Buffer.from('The quick brown fox jumps over the lazy dog.'))).toBe(
      'USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z',
    );
    expect(base58btcEncode(fromHex('0000287fb4cd'))).toBe('11233QC4');
    expect(toHex(base58btcDecode('11233QC4')!)).toBe('0000287fb4cd');
    expect(Buffer.from(base58btcDecode('2NEpo7TZRRrLZSi2U')!).toString()).toBe('Hello World!');
  });

  it('base58 - leading zero bytes map to leading 1s and back', () => {
    expect(base58btcEncode(new Uint8Array(0))).toBe('');
    expect(base58btcDecode('')).toEqual(new Uint8Array(0));
    for (let n = 1; n <= 40; n++) {
      expect(base58btcEncode(new Uint8Array(n))).toBe('1'.repeat(n));
      expect(base58btcDecode('1'.repeat(n))).toEqual(new Uint8Array(n));
    }
    expect(base58btcEncode(new Uint8Array([0, 0, 1]))).toBe('112');
    expect(base58btcDecode('112')).toEqual(new Uint8Array([0, 0, 1]));
    expect(base58btcEncode(new Uint8Array([57]))).toBe('z');
    expect(base58btcEncode(new Uint8Array([58]))).toBe('21');
  });

  it('base58 - round trips random byte strings of length 0..80 with 0..5 leading zeros', () => {
    for (let i = 0; i < 3000; i++) {
      const zeros = i % 6;
      const bytes = new Uint8Array(zeros + (i % 81));
      bytes.set(randomBytes(bytes.length - zeros), zeros);
      const text = base58btcEncode(bytes);
      expect(text).toMatch(/^[1-9A-HJ-NP-Za-km-z]*$/);
      expect(toHex(base58btcDecode(text)!)).toBe(toHex(bytes));
    }
  });

  it('base58 - decode returns undefined for characters outside the alphabet', () => {
    for (const bad of ['0', 'O', 'I', 'l', '1110', 'abc+', 'z z', '\u00ff', '2NEpo7TZRRrLZSi2U=']) {
      expect(base58btcDecode(bad), bad).toBeUndefined();
    }
  });
});
