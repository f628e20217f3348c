import { createHash, randomBytes } from 'node:crypto';
import * as noble from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import {
  ed25519Backend,
  fromHex,
  InvalidArgumentError,
  nobleEd25519,
  nodeEd25519,
  PUBLIC_KEY_LENGTH,
  SEED_LENGTH,
  SIGNATURE_LENGTH,
  toHex,
  type Ed25519Backend,
} from '../src/index.ts';

/**
 * RFC 8032 section 7.1, "Test Vectors for Ed25519":
 * https://www.rfc-editor.org/rfc/rfc8032#section-7.1
 * Hex typed in from the RFC text (SECRET KEY is the 32-byte seed).
 */
interface Vector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}

const TEST_1024_MESSAGE =
  '08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98' +
  'fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8' +
  '79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d' +
  '658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc' +
  '1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe' +
  'ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e' +
  '06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef' +
  'efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7' +
  'aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1' +
  '85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2' +
  'd17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24' +
  '554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270' +
  '88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc' +
  '2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07' +
  '07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba' +
  'b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a' +
  'ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e' +
  'c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7' +
  '51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c' +
  '42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8' +
  'ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df' +
  'f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08' +
  'd78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649' +
  'de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4' +
  '88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3' +
  '2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e' +
  '6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f' +
  'b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5' +
  '0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1' +
  '369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d' +
  'b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c' +
  '0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0';

const VECTORS: Vector[] = [
  {
    name: 'TEST 1',
    secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155' +
      '5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secretKey: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da' +
      '085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secretKey: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac' +
      '18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST 1024',
    secretKey: 'f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5',
    publicKey: '278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e',
    message: TEST_1024_MESSAGE,
    signature:
      '0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350' +
      'aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03',
  },
  {
    name: 'TEST SHA(abc)',
    secretKey: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    publicKey: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    // SHA-512("abc")
    message:
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
      '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature:
      'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589' +
      '09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

const BACKENDS: Ed25519Backend[] = [nodeEd25519, nobleEd25519];

// Group order L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 section 5.1).
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
// Field prime p = 2^255 - 19 and curve constant d = -121665/121666.
const P = 2n ** 255n - 19n;

const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;
function powMod(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n;
  base = mod(base, m);
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % m;
    base = (base * base) % m;
    exp >>= 1n;
  }
  return result;
}
const D = mod(-121665n * powMod(121666n, P - 2n, P), P);

function leToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}
function bigIntToLe(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/**
 * The encoding of some y for which x^2 = (y^2 - 1) / (d y^2 + 1) has no square
 * root mod p: no point on the curve has that encoding (RFC 8032 section 5.1.3).
 * Computed here independently of either backend.
 */
function nonCurvePointEncoding(): Uint8Array {
  for (let y = 2n; ; y++) {
    const u = mod(y * y - 1n, P);
    const v = mod(D * y * y + 1n, P);
    const x2 = (u * powMod(v, P - 2n, P)) % P;
    if (x2 !== 0n && powMod(x2, (P - 1n) / 2n, P) === P - 1n) return bigIntToLe(y, 32);
  }
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

describe('ed25519 RFC 8032 vectors', () => {
  it('ed25519 - the typed-in vector messages have the lengths and content the RFC states', () => {
    expect(fromHex(TEST_1024_MESSAGE).length).toBe(1023);
    const sha = VECTORS.find((v) => v.name === 'TEST SHA(abc)')!;
    expect(sha.message).toBe(createHash('sha512').update('abc').digest('hex'));
  });

  for (const backend of BACKENDS) {
    for (const v of VECTORS) {
      it(`ed25519 - ${backend.name} reproduces RFC 8032 ${v.name} (public key, exact signature, verify)`, () => {
        const seed = fromHex(v.secretKey);
        const message = fromHex(v.message);
        expect(toHex(backend.publicKeyFromSeed(seed))).toBe(v.publicKey);
        expect(toHex(backend.sign(seed, message))).toBe(v.signature);
        expect(backend.verify(fromHex(v.publicKey), message, fromHex(v.signature))).toBe(true);
      });

      it(`ed25519 - ${backend.name} rejects RFC 8032 ${v.name} with a changed message or another key`, () => {
        const message = fromHex(v.message);
        const changed = message.length === 0 ? new Uint8Array([0]) : flipBit(message, 0);
        expect(backend.verify(fromHex(v.publicKey), changed, fromHex(v.signature))).toBe(false);
        const other = VECTORS.find((w) => w !== v)!;
        expect(backend.verify(fromHex(other.publicKey), message, fromHex(v.signature))).toBe(false);
      });
    }
  }
});

describe('ed25519 backends agree', () => {
  it('ed25519 - node and noble derive the same keys and identical signatures, and verify each other, on 200 random seeds', () => {
    for (let i = 0; i < 200; i++) {
      const seed = randomBytes(SEED_LENGTH);
      const message = randomBytes(i % 7 === 0 ? 0 : 1 + ((i * 37) % 600));
      const pubNode = nodeEd25519.publicKeyFromSeed(seed);
      const pubNoble = nobleEd25519.publicKeyFromSeed(seed);
      expect(toHex(pubNoble)).toBe(toHex(pubNode));
      expect(pubNode.length).toBe(PUBLIC_KEY_LENGTH);

      const sigNode = nodeEd25519.sign(seed, message);
      const sigNoble = nobleEd25519.sign(seed, message);
      expect(sigNode.length).toBe(SIGNATURE_LENGTH);
      // Ed25519 is deterministic: both implementations must produce the same bytes.
      expect(toHex(sigNoble)).toBe(toHex(sigNode));

      expect(nobleEd25519.verify(pubNode, message, sigNode)).toBe(true);
      expect(nodeEd25519.verify(pubNoble, message, sigNoble)).toBe(true);
      // And neither accepts the other's signature over a different message.
      const tampered = new Uint8Array([...message, 0x01]);
      expect(nobleEd25519.verify(pubNode, tampered, sigNode)).toBe(false);
      expect(nodeEd25519.verify(pubNoble, tampered, sigNoble)).toBe(false);
    }
  });

  it('ed25519 - ed25519Backend picks node by default and noble on request', () => {
    expect(ed25519Backend()).toBe(nodeEd25519);
    expect(ed25519Backend('node')).toBe(nodeEd25519);
    expect(ed25519Backend('noble')).toBe(nobleEd25519);
    expect(nodeEd25519.name).toBe('node');
    expect(nobleEd25519.name).toBe('noble');
  });
});

describe('ed25519 verify on hostile input', () => {
  const v = VECTORS[1]!; // TEST 2
  const publicKey = fromHex(v.publicKey);
  const message = fromHex(v.message);
  const signature = fromHex(v.signature);

  for (const backend of BACKENDS) {
    const verifies = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => {
      let result: unknown;
      expect(() => {
        result = backend.verify(pk, msg, sig);
      }).not.toThrow();
      return result;
    };

    it(`ed25519 - ${backend.name} verify returns false for public keys of the wrong length`, () => {
      expect(verifies(publicKey, message, signature)).toBe(true); // control
      for (const n of [0, 1, 31, 33, 64]) {
        const pk = new Uint8Array(n);
        pk.set(publicKey.subarray(0, Math.min(n, 32)));
        expect(verifies(pk, message, signature)).toBe(false);
      }
    });

    it(`ed25519 - ${backend.name} verify returns false for signatures of the wrong length`, () => {
      for (const n of [0, 1, 32, 63, 65, 128]) {
        const sig = new Uint8Array(n);
        sig.set(signature.subarray(0, Math.min(n, 64)));
        expect(verifies(publicKey, message, sig)).toBe(false);
      }
    });

    it(`ed25519 - ${backend.name} verify returns false for a public key that is not a curve point`, () => {
      const notAPoint = nonCurvePointEncoding();
      // The input really is undecodable (checked against noble's point decoder directly).
      expect(() => noble.Point.fromBytes(notAPoint)).toThrow();
      expect(verifies(notAPoint, message, signature)).toBe(false);
      // Same y with the sign bit set, and a y >= p (non-canonical field element).
      const withSign = Uint8Array.from(notAPoint);
      withSign[31]! |= 0x80;
      expect(verifies(withSign, message, signature)).toBe(false);
      expect(verifies(bigIntToLe(P + 1n, 32), message, signature)).toBe(false);
      expect(verifies(new Uint8Array(32).fill(0xff), message, signature)).toBe(false);
    });

    it(`ed25519 - ${backend.name} verify returns false for a non-canonical S (S + L)`, () => {
      const s = leToBigInt(signature.subarray(32));
      expect(s < L).toBe(true);
      const malleated = new Uint8Array(64);
      malleated.set(signature.subarray(0, 32));
      malleated.set(bigIntToLe(s + L, 32), 32);
      expect(verifies(publicKey, message, malleated)).toBe(false);
      // S = L exactly, and S = 2^256 - 1.
      malleated.set(bigIntToLe(L, 32), 32);
      expect(verifies(publicKey, message, malleated)).toBe(false);
      malleated.fill(0xff, 32);
      expect(verifies(publicKey, message, malleated)).toBe(false);
    });

    it(`ed25519 - ${backend.name} verify returns false for every single flipped bit of key, signature and message`, () => {
      for (let bit = 0; bit < 512; bit++) expect(verifies(publicKey, message, flipBit(signature, bit))).toBe(false);
      for (let bit = 0; bit < 256; bit++) expect(verifies(flipBit(publicKey, bit), message, signature)).toBe(false);
      for (let bit = 0; bit < 8; bit++) expect(verifies(publicKey, flipBit(message, bit), signature)).toBe(false);
    });

    it(`ed25519 - ${backend.name} verify returns false for all-zero key and signature`, () => {
      expect(verifies(new Uint8Array(32), message, signature)).toBe(false);
      expect(verifies(publicKey, message, new Uint8Array(64))).toBe(false);
    });
  }
});

describe('ed25519 misuse', () => {
  for (const backend of BACKENDS) {
    it(`ed25519 - ${backend.name} throws InvalidArgumentError for a seed of the wrong length or type`, () => {
      for (const seed of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33), new Uint8Array(64)]) {
        expect(() => backend.publicKeyFromSeed(seed)).toThrow(InvalidArgumentError);
        expect(() => backend.sign(seed, new Uint8Array(1))).toThrow(InvalidArgumentError);
      }
      const notBytes = new Array(32).fill(1) as unknown as Uint8Array;
      expect(() => backend.publicKeyFromSeed(notBytes)).toThrow(InvalidArgumentError);
      expect(() => backend.sign(notBytes, new Uint8Array(1))).toThrow(InvalidArgumentError);
      let caught: unknown;
      try {
        backend.sign(new Uint8Array(31), new Uint8Array(1));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).code).toBe('invalid_argument');
    });
  }
});
