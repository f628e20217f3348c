import { randomBytes } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  publicKeyFromDid,
  senderOfSubject,
  DEFAULT_MAX_FRAME_BYTES,
  SignerCache,
  FRAME_VERSION,
  FrameVerifier,
  generateKey,
  HEADER_LENGTH,
  ID_LENGTH,
  InvalidArgumentError,
  isRejectReason,
  keyFromSeed,
  MAX_SUBJECT_LENGTH,
  MAX_TYPE_LENGTH,
  nobleEd25519,
  nodeEd25519,
  openFrame,
  SIGNING_DOMAIN,
  signFrame,
  signingInput,
  subjects,
  toHex,
  type AgentKey,
  type Ed25519Backend,
  type RejectReason,
} from '../src/index.ts';

// ---------------------------------------------------------------------------
// Hand-built frames: body bytes are assembled entry by entry, so a test can put
// anything on the wire (duplicate keys, wrong types) and still sign it
// correctly, leaving exactly one check to catch it.

const packr = new Packr({ useRecords: false, variableMapSize: true });
const NOW = 1_750_000_000_000;

const alice = generateKey();
const bob = generateKey();
const MESH = 'fr';
const SUB = subjects.message(MESH, bob.agentId, alice.agentId);

type Entry = [key: unknown, value: unknown];

/** Bytes written into a hand-built body verbatim, as a key or a value. */
class Raw {
  constructor(readonly bytes: Uint8Array) {}
}
const raw = (...b: number[]) => new Raw(Uint8Array.from(b));
const enc = (v: unknown) => (v instanceof Raw ? v.bytes : Buffer.from(packr.pack(v)));

/** A MessagePack map with exactly these entries, in this order (duplicates allowed). */
function mapBytes(entries: Entry[], header: 'fix' | 'map16' | 'map32' = entries.length < 16 ? 'fix' : 'map16'): Uint8Array {
  const n = entries.length;
  const head =
    header === 'fix'
      ? [0x80 | n]
      : header === 'map16'
        ? [0xde, n >> 8, n & 0xff]
        : [0xdf, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  const parts: Uint8Array[] = [Uint8Array.from(head)];
  for (const [k, v] of entries) parts.push(enc(k), enc(v));
  return Buffer.concat(parts);
}

/** The entries signFrame would write, for `key`, overridable per field. */
function entries(key: AgentKey, over: Record<string, unknown> = {}, drop: string[] = []): Entry[] {
  const base: Record<string, unknown> = {
    v: 1,
    id: randomBytes(ID_LENGTH),
    iss: key.did,
    sub: SUB,
    typ: 'test.msg',
    iat: BigInt(NOW),
    data: { hello: 'world' },
    ...over,
  };
  return Object.entries(base).filter(([k]) => !drop.includes(k));
}

interface AssembleOptions {
  version?: number;
  publicKey?: Uint8Array;
  signature?: Uint8Array;
}

/** version || public key || Ed25519(key, signingInput(body)) || body. */
function assemble(key: AgentKey, body: Uint8Array, opts: AssembleOptions = {}): Uint8Array {
  const signature = opts.signature ?? key.sign(signingInput(body));
  const frame = new Uint8Array(HEADER_LENGTH + body.length);
  frame[0] = opts.version ?? FRAME_VERSION;
  frame.set(opts.publicKey ?? key.publicKey, 1);
  frame.set(signature, 33);
  frame.set(body, HEADER_LENGTH);
  return frame;
}

const signed = (key: AgentKey, e: Entry[]) => assemble(key, mapBytes(e));

/**
 * Runs openFrame (node and noble) and FrameVerifier (node and noble) and
 * checks they all give the same verdict; returns that verdict.
 */
function verdict(frame: Uint8Array, subject = SUB): 'ok' | RejectReason {
  const results: string[] = [];
  for (const backend of [nodeEd25519, nobleEd25519]) {
    const r = openFrame(frame, { backend });
    results.push(r.ok ? 'ok' : r.reason);
  }
  // The receiver checks the header key against the subject's sender before the signature
  // (openFrame has no subject): a frame under another key is subject_mismatch there, whatever else.
  const sender = publicKeyFromDid(`did:key:${senderOfSubject(subject)}`);
  const underSender = frame.length >= 33 && Buffer.from(frame.subarray(1, 33)).equals(Buffer.from(sender));
  for (const backend of ['node', 'noble'] as const) {
    const r = new FrameVerifier({ backend, now: () => NOW, self: bob.did }).verify(frame, { subject });
    if (frame.length >= HEADER_LENGTH + 1 && frame.length <= DEFAULT_MAX_FRAME_BYTES && frame[0] === FRAME_VERSION && !underSender) {
      expect(r.ok ? 'ok' : r.reason).toBe('subject_mismatch');
      continue;
    }
    results.push(r.ok ? 'ok' : r.reason);
  }
  expect(new Set(results).size, `backends disagree: ${results.join(',')}`).toBe(1);
  const result = results[0]!;
  expect(result === 'ok' || isRejectReason(result)).toBe(true);
  return result as 'ok' | RejectReason;
}

/** node-only openFrame verdict, for loops over many frames; every 8th frame also goes through verdict(). */
function bulkVerdict(frame: Uint8Array, i: number): 'ok' | RejectReason {
  if (i % 8 === 0) return verdict(frame);
  const r = openFrame(frame);
  return r.ok ? 'ok' : r.reason;
}

const reasonOf = (r: { ok: boolean; reason?: RejectReason }) => (r.ok ? 'ok' : r.reason);

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

// ---------------------------------------------------------------------------

describe('frame valid frames', () => {
  it('frame - a signFrame frame opens with both backends and the opened fields equal the inputs', () => {
    const id = randomBytes(16);
    const cor = randomBytes(16);
    const data = {
      text: 'hi',
      n: 42,
      neg: -7,
      big: 2 ** 40,
      f: 1.5,
      list: [1, 'two', null, true],
      bin: new Uint8Array([1, 2, 3]),
      nested: { a: { b: 'c' } },
    };
    const { bytes, body } = signFrame(alice, { sub: SUB, typ: 'greet', data, aud: bob.did, cor, id, iat: NOW });
    expect(body).toEqual({ v: 1, id, iss: alice.did, sub: SUB, aud: bob.did, typ: 'greet', iat: NOW, cor, data });

    for (const backend of [nodeEd25519, nobleEd25519]) {
      const r = openFrame(bytes, { backend });
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const f = r.frame;
      expect(f.v).toBe(1);
      expect(toHex(f.id)).toBe(toHex(id));
      expect(f.iss).toBe(alice.did);
      expect(f.sub).toBe(SUB);
      expect(f.aud).toBe(bob.did);
      expect(f.typ).toBe('greet');
      expect(f.iat).toBe(NOW);
      expect(toHex(f.cor!)).toBe(toHex(cor));
      expect(f.data).toEqual({ ...data, bin: expect.any(Uint8Array) });
      expect(toHex((f.data as { bin: Uint8Array }).bin)).toBe('010203');
      expect(toHex(f.publicKey)).toBe(toHex(alice.publicKey));
      expect(f.raw).toEqual(bytes); // a copy
    }
    for (const backend of ['node', 'noble'] as const) {
      const r = new FrameVerifier({ backend, now: () => NOW, self: bob.did }).verify(bytes, { subject: SUB });
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.frame.data).toEqual({ ...data, bin: expect.any(Uint8Array) });
    }
  });

  it('frame - optional fields are absent from the opened frame when not sent, and data defaults to null', () => {
    const { bytes, body } = signFrame(alice, { sub: SUB, typ: 'ping', iat: NOW });
    expect(body.data).toBeNull();
    const r = openFrame(bytes);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect('aud' in r.frame).toBe(false);
    expect('cor' in r.frame).toBe(false);
    expect(r.frame.data).toBeNull();
    expect(r.frame.id.length).toBe(16);
  });

  it('frame - wire layout is version || public key || signature || body with the signature over the domain-prefixed body', () => {
    const { bytes } = signFrame(alice, { sub: SUB, typ: 't', data: 1, aud: bob.did, cor: new Uint8Array(16), iat: NOW });
    expect(HEADER_LENGTH).toBe(97);
    expect(bytes[0]).toBe(1);
    expect(toHex(bytes.subarray(1, 33))).toBe(toHex(alice.publicKey));
    const body = bytes.subarray(HEADER_LENGTH);
    const input = signingInput(body);
    expect(Buffer.from(input.subarray(0, SIGNING_DOMAIN.length)).toString()).toBe('trustmesh/v1\n');
    expect(toHex(input.subarray(SIGNING_DOMAIN.length))).toBe(toHex(body));
    expect(nodeEd25519.verify(alice.publicKey, input, bytes.subarray(33, 97))).toBe(true);
    // The signature is not over the bare body: the domain prefix matters.
    expect(nodeEd25519.verify(alice.publicKey, body, bytes.subarray(33, 97))).toBe(false);

    // Body: standard MessagePack map, keys in the documented order, iat an integer.
    expect(body[0]).toBe(0x89);
    const decoded = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' }).unpack(body) as Record<string, unknown>;
    expect(Object.keys(decoded)).toEqual(['v', 'id', 'iss', 'sub', 'aud', 'typ', 'iat', 'cor', 'data']);
    const iatKey = Buffer.from(body).indexOf(Buffer.from([0xa3, 0x69, 0x61, 0x74]));
    expect(iatKey).toBeGreaterThan(0);
    expect([0xcf, 0xd3]).toContain(body[iatKey + 4]); // uint64 / int64, not float64 (0xcb)
    // id and cor are bin 8 of 16 bytes.
    const idKey = Buffer.from(body).indexOf(Buffer.from([0xa2, 0x69, 0x64]));
    expect([body[idKey + 3], body[idKey + 4]]).toEqual([0xc4, 16]);
  });

  it('frame - signFrame is deterministic for a fixed id and iat, and identical with node and noble keys', () => {
    const seed = randomBytes(32);
    const init = { sub: SUB, typ: 't', data: { x: [1, 2, 3] }, id: new Uint8Array(16).fill(3), iat: NOW };
    const a = signFrame(keyFromSeed(seed), init).bytes;
    const b = signFrame(keyFromSeed(seed, { backend: 'noble' }), init).bytes;
    expect(toHex(a)).toBe(toHex(b));
    expect(toHex(signFrame(keyFromSeed(seed), init).bytes)).toBe(toHex(a));
  });

  it('frame - signFrame draws a fresh random id per frame when none is given', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) ids.add(toHex(signFrame(alice, { sub: SUB, typ: 't' }).body.id));
    expect(ids.size).toBe(200);
  });

  it('frame - unknown extra body keys are ignored, including __proto__, and nothing is polluted', () => {
    const e = entries(alice);
    e.splice(3, 0, ['zz_extension', { deep: [1, 2] }]);
    e.push(['x-future', 'value'], ['__proto__', { polluted: true }]);
    const frame = signed(alice, e);
    expect(verdict(frame)).toBe('ok');
    const r = openFrame(frame);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Object.keys(r.frame).sort()).toEqual(['data', 'iat', 'id', 'iss', 'publicKey', 'raw', 'sub', 'typ', 'v']);
    expect(Object.getPrototypeOf(r.frame)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('frame - a body nested 32 levels deep is accepted; deeper ones are accepted or bad_frame, never an exception', () => {
    // The body map is level 1 and data level 2: 31 containers make 32 levels.
    const nest = (levels: number) => {
      let data: unknown = 'leaf';
      for (let i = 0; i < levels - 1; i++) data = i % 2 ? { d: data } : [data];
      return data;
    };
    const data = nest(32);
    const { bytes } = signFrame(alice, { sub: SUB, typ: 't', data, iat: NOW });
    expect(verdict(bytes)).toBe('ok');
    const r = openFrame(bytes);
    expect(r.ok && r.frame.data).toEqual(data);
    // Hand-built, since a sender need not be able to produce them.
    expect(verdict(signed(alice, entries(alice, { data: nest(32) })))).toBe('ok');
    for (const levels of [33, 64, 500]) {
      expect(['ok', 'bad_frame']).toContain(verdict(signed(alice, entries(alice, { data: nest(levels) }))));
    }
  });

  it('frame - map16 and map32 body headers are accepted like fixmap', () => {
    expect(verdict(assemble(alice, mapBytes(entries(alice), 'fix')))).toBe('ok');
    expect(verdict(assemble(alice, mapBytes(entries(alice), 'map16')))).toBe('ok');
    expect(verdict(assemble(alice, mapBytes(entries(alice), 'map32')))).toBe('ok');
  });

  it('frame - fields in any order are accepted', () => {
    expect(verdict(signed(alice, entries(alice).reverse()))).toBe('ok');
    const shuffled = entries(alice, { aud: bob.did, cor: randomBytes(16) });
    shuffled.push(shuffled.shift()!, shuffled.shift()!);
    expect(verdict(signed(alice, shuffled))).toBe('ok');
  });

  it('frame - iat is accepted in every MessagePack int format', () => {
    const be = (n: bigint, bytes: number) => Array.from({ length: bytes }, (_, i) => Number((n >> BigInt(8 * (bytes - 1 - i))) & 0xffn));
    const N = BigInt(NOW);
    const cases: [number, Raw][] = [
      [5, raw(0x05)], // positive fixint
      [200, raw(0xcc, 200)], // uint 8
      [40_000, raw(0xcd, ...be(40_000n, 2))], // uint 16
      [3_000_000_000, raw(0xce, ...be(3_000_000_000n, 4))], // uint 32
      [NOW, raw(0xcf, ...be(N, 8))], // uint 64
      [100, raw(0xd0, 100)], // int 8
      [30_000, raw(0xd1, ...be(30_000n, 2))], // int 16
      [2_000_000_000, raw(0xd2, ...be(2_000_000_000n, 4))], // int 32
      [NOW, raw(0xd3, ...be(N, 8))], // int 64
      [Number.MAX_SAFE_INTEGER, raw(0xcf, ...be(BigInt(Number.MAX_SAFE_INTEGER), 8))],
    ];
    for (const [iat, encoded] of cases) {
      const frame = signed(alice, entries(alice, { iat: encoded }));
      const r = openFrame(frame);
      expect(r.ok && r.frame.iat, `iat ${iat}`).toBe(iat);
      const v = new FrameVerifier({ now: () => iat }).verify(frame, { subject: SUB });
      expect(reasonOf(v), `iat ${iat}`).toBe('ok');
    }
  });

  it('frame - accepts a frame that is a view into a larger buffer (byteOffset != 0)', () => {
    const { bytes } = signFrame(alice, { sub: SUB, typ: 't', iat: NOW });
    const big = new Uint8Array(bytes.length + 100);
    big.set(bytes, 37);
    const view = big.subarray(37, 37 + bytes.length);
    expect(verdict(view)).toBe('ok');
    expect(verdict(Buffer.from(bytes))).toBe('ok');
  });

  it('frame - openFrame with a small SignerCache gives the same results as without, also after evictions', () => {
    const cache = new SignerCache(nodeEd25519, 2);
    for (let i = 0; i < 5; i++) {
      const k = generateKey();
      const good = signFrame(k, { sub: SUB, typ: 't' }).bytes;
      expect(openFrame(good, { signers: cache }).ok).toBe(true);
      const wrongIss = signed(k, entries(k, { iss: alice.did }));
      const r = openFrame(wrongIss, { signers: cache });
      expect(r.ok ? 'ok' : r.reason).toBe('issuer_mismatch');
      const flipped = Uint8Array.from(good);
      flipped[flipped.length - 1]! ^= 1;
      const bad = openFrame(flipped, { signers: cache });
      expect(bad.ok ? 'ok' : bad.reason).toBe('bad_signature');
    }
    expect(cache.size).toBe(2);
  });
});

describe('frame too_large', () => {
  it('frame - a frame over the limit is refused as too_large before any signature work', () => {
    let verifyCalls = 0;
    const spy: Ed25519Backend = {
      name: 'node',
      publicKeyFromSeed: nodeEd25519.publicKeyFromSeed,
      sign: nodeEd25519.sign,
      verify: () => {
        verifyCalls++;
        return true;
      },
      prepare: () => () => {
        verifyCalls++;
        return true;
      },
    };
    const garbage = randomBytes(1001);
    garbage[0] = 1;
    const over = openFrame(garbage, { maxFrameBytes: 1000, backend: spy });
    expect(over.ok ? 'ok' : over.reason).toBe('too_large');
    expect(verifyCalls).toBe(0);
    // Control: at exactly the limit the spy is consulted (so it would have counted).
    const at = openFrame(garbage.subarray(0, 1000), { maxFrameBytes: 1000, backend: spy });
    expect(at.ok).toBe(false);
    expect(verifyCalls).toBe(1);
  });

  it('frame - the default limit is 1 MiB and garbage just over it is too_large', () => {
    expect(DEFAULT_MAX_FRAME_BYTES).toBe(1024 * 1024);
    const garbage = new Uint8Array(DEFAULT_MAX_FRAME_BYTES + 1).fill(0x01);
    expect(verdict(garbage)).toBe('too_large');
    const r = new FrameVerifier().verify(new Uint8Array(DEFAULT_MAX_FRAME_BYTES + 1), { subject: SUB });
    expect(r.ok ? 'ok' : r.reason).toBe('too_large');
  });

  it('frame - a valid frame over a configured limit is too_large, and at the limit it verifies', () => {
    const { bytes } = signFrame(alice, { sub: SUB, typ: 't', data: 'x'.repeat(500), iat: NOW });
    const at = new FrameVerifier({ maxFrameBytes: bytes.length, now: () => NOW }).verify(bytes, { subject: SUB });
    expect(at.ok).toBe(true);
    const over = new FrameVerifier({ maxFrameBytes: bytes.length - 1, now: () => NOW }).verify(bytes, { subject: SUB });
    expect(over.ok ? 'ok' : over.reason).toBe('too_large');
  });
});

describe('frame bad_frame', () => {
  it('frame - non-bytes input is bad_frame', () => {
    for (const v of ['frame', null, undefined, 42, [1, 2, 3], {}, new Uint16Array(200)]) {
      const r = openFrame(v as unknown as Uint8Array);
      expect(r.ok ? 'ok' : r.reason).toBe('bad_frame');
      const vr = new FrameVerifier().verify(v as unknown as Uint8Array, { subject: SUB });
      expect(vr.ok ? 'ok' : vr.reason).toBe('bad_frame');
    }
  });

  it('frame - frames truncated to the header or less are bad_frame', () => {
    const { bytes } = signFrame(alice, { sub: SUB, typ: 't', iat: NOW });
    for (const n of [0, 1, 2, 32, 33, 96, 97]) expect(verdict(bytes.subarray(0, n)), `length ${n}`).toBe('bad_frame');
    // A version byte and header alone (no body) is bad_frame too, whatever the header holds.
    expect(verdict(bytes.subarray(0, HEADER_LENGTH))).toBe('bad_frame');
  });

  it('frame - a correctly signed truncated body is bad_frame', () => {
    const body = mapBytes(entries(alice));
    for (const n of [1, 2, 10, Math.floor(body.length / 2), body.length - 1]) {
      expect(verdict(assemble(alice, body.subarray(0, n))), `body length ${n}`).toBe('bad_frame');
    }
  });

  it('frame - a correctly signed body that is not MessagePack is bad_frame', () => {
    for (const body of [
      Buffer.from('hello, not msgpack'),
      Buffer.from('{"v":1}'),
      Uint8Array.from([0xc1]), // never-used byte
      Uint8Array.from([0x81, 0xc1, 0x00]), // map whose key is the never-used byte
      Uint8Array.from([0xde]), // map16 without length
      Uint8Array.from([0xdf, 0x00, 0x00]), // map32 with short length
      Uint8Array.from([0x82, 0xa1, 0x61, 0x01]), // map of 2 with only one entry
    ]) {
      expect(verdict(assemble(alice, body)), toHex(body)).toBe('bad_frame');
    }
  });

  it('frame - a correctly signed body with trailing bytes after the map is bad_frame', () => {
    const body = mapBytes(entries(alice));
    expect(verdict(assemble(alice, body))).toBe('ok');
    for (const tail of [[0xc0], [0x00], [0x81, 0xa1, 0x61, 0x01]]) {
      expect(verdict(assemble(alice, Buffer.concat([body, Uint8Array.from(tail)])))).toBe('bad_frame');
    }
  });

  it('frame - a correctly signed body that is a MessagePack array, string, number or nil is bad_frame', () => {
    const fields = entries(alice).map(([, v]) => v);
    for (const value of [fields, [], 'did:key:z6Mk', 42, -1, null, true, 1.5, new Uint8Array(16)]) {
      expect(verdict(assemble(alice, Buffer.from(packr.pack(value)))), typeof value).toBe('bad_frame');
    }
  });

  it('frame - duplicate keys in a correctly signed body are bad_frame', () => {
    // Every field duplicated once, with another value and with the same value.
    const base = entries(alice);
    for (let i = 0; i < base.length; i++) {
      const [k, v] = base[i]!;
      const other = k === 'data' ? 'other' : k === 'typ' ? 'other.typ' : v;
      expect(verdict(signed(alice, [...base, [k, other]])), `duplicate ${String(k)}`).toBe('bad_frame');
      expect(verdict(signed(alice, [[k, v], ...base])), `duplicate ${String(k)} first`).toBe('bad_frame');
    }
    // Duplicate of an unknown key, and an integer key colliding with its string form.
    expect(verdict(signed(alice, [...base, ['ext', 1], ['ext', 2]]))).toBe('bad_frame');
    expect(verdict(signed(alice, [...base, [1, 'a'], ['1', 'b']]))).toBe('bad_frame');
    // The iss duplicated to the signer's DID after a foreign one: last-wins decoding would hide it.
    const e = entries(alice, { iss: bob.did });
    expect(verdict(signed(alice, [...e, ['iss', alice.did]]))).toBe('bad_frame');
  });

  it('frame - wrong id: 15 or 17 bytes, a string, missing', () => {
    expect(verdict(signed(alice, entries(alice, { id: randomBytes(15) })))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { id: randomBytes(17) })))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { id: randomBytes(0) })))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { id: 'abcdefghijklmnop' })))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { id: Array.from(randomBytes(16)) })))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, {}, ['id'])))).toBe('bad_frame');
  });

  it('frame - iat encoded as a float is bad_frame, even when its value is a whole number', () => {
    const f64 = Buffer.alloc(9);
    f64[0] = 0xcb;
    f64.writeDoubleBE(NOW, 1);
    expect(verdict(signed(alice, entries(alice, { iat: new Raw(f64) })))).toBe('bad_frame');
    const f32 = Buffer.alloc(5);
    f32[0] = 0xca;
    f32.writeFloatBE(1024, 1);
    const frame = signed(alice, entries(alice, { iat: new Raw(f32) }));
    expect(reasonOf(openFrame(frame))).toBe('bad_frame');
  });

  it('frame - v encoded as a float 1.0 is bad_version', () => {
    const f64 = Buffer.alloc(9);
    f64[0] = 0xcb;
    f64.writeDoubleBE(1, 1);
    expect(verdict(signed(alice, entries(alice, { v: new Raw(f64) })))).toBe('bad_version');
    expect(verdict(signed(alice, entries(alice, { v: raw(0xd3, 0, 0, 0, 0, 0, 0, 0, 1) })))).toBe('ok'); // int 64 one is fine
  });

  it('frame - a top-level key that is not a str is bad_frame', () => {
    const base = entries(alice);
    for (const key of [
      raw(0x07),
      raw(0xc0),
      raw(0xc3),
      raw(0xc4, 1, 0x61),
      raw(0x91, 0xa1, 0x61),
      raw(0x80),
      raw(0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
    ]) {
      expect(verdict(signed(alice, [...base, [key, 'x']])), toHex(key.bytes)).toBe('bad_frame');
    }
    // An integer key where a field name is expected: "v" is then missing too, but 5a comes first.
    expect(verdict(signed(alice, [[raw(0x01), 1], ...base.slice(1)]))).toBe('bad_frame');
  });

  it('frame - ext types and the byte 0xc1 anywhere in the body are bad_frame', () => {
    const exts = [
      raw(0xd6, 0xff, 0x65, 0x00, 0x00, 0x00), // timestamp 32 (ext -1)
      raw(0xd4, 0x01, 0x00), // fixext 1
      raw(0xd5, 0x02, 0x00, 0x00), // fixext 2
      raw(0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0), // timestamp 64
      raw(0xd8, 0x05, ...new Array<number>(16).fill(0)), // fixext 16
      raw(0xc7, 0x01, 0x72, 0x00), // ext 8 (msgpackr's record definition type 'r')
      raw(0xc8, 0x00, 0x01, 0x73, 0x00), // ext 16
      raw(0xc9, 0x00, 0x00, 0x00, 0x01, 0x74, 0x00), // ext 32
      raw(0xc1),
    ];
    for (const x of exts) {
      expect(verdict(signed(alice, entries(alice, { data: x }))), `data ${toHex(x.bytes)}`).toBe('bad_frame');
      expect(
        verdict(signed(alice, entries(alice, { data: new Raw(Uint8Array.from([0x81, 0xa1, 0x6b, ...x.bytes])) }))),
        `nested ${toHex(x.bytes)}`,
      ).toBe('bad_frame');
      expect(verdict(signed(alice, [...entries(alice), ['ext', x]])), `unknown key ${toHex(x.bytes)}`).toBe('bad_frame');
    }
  });

  it('frame - a str that is not valid UTF-8 is bad_frame', () => {
    for (const bad of [[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80] /* surrogate */, [0xc0, 0xaf] /* overlong */]) {
      const s = raw(0xa0 | (bad.length + 1), 0x74, ...bad);
      expect(verdict(signed(alice, entries(alice, { typ: s }))), `typ ${toHex(s.bytes)}`).toBe('bad_frame');
      expect(verdict(signed(alice, entries(alice, { data: s }))), `data ${toHex(s.bytes)}`).toBe('bad_frame');
    }
    // Valid multi-byte UTF-8 is fine.
    expect(verdict(signed(alice, entries(alice, { typ: 'grüße.✓', data: '𝄞' })))).toBe('ok');
  });

  it('frame - duplicate keys inside data are bad_frame as well', () => {
    const dupInData = raw(0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02);
    expect(verdict(signed(alice, entries(alice, { data: dupInData })))).toBe('bad_frame');
    const nested = raw(0x81, 0xa1, 0x6f, 0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x01);
    expect(verdict(signed(alice, entries(alice, { data: nested })))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { data: raw(0x82, 0xa1, 0x61, 0x01, 0xa1, 0x62, 0x01) })))).toBe('ok');
  });

  it('frame - wrong iat: float, negative, string, unsafe integer, timestamp extension, missing', () => {
    for (const iat of [
      NOW + 0.5,
      1.5,
      -1,
      -NOW,
      BigInt(-1),
      String(NOW),
      null,
      true,
      2 ** 53 + 2,
      BigInt(2) ** BigInt(63),
      new Date(NOW),
      [NOW],
    ]) {
      expect(verdict(signed(alice, entries(alice, { iat }))), String(iat)).toBe('bad_frame');
    }
    expect(verdict(signed(alice, entries(alice, {}, ['iat'])))).toBe('bad_frame');
  });

  it('frame - missing or wrongly typed iss, sub, typ are bad_frame', () => {
    for (const field of ['iss', 'sub', 'typ']) {
      expect(verdict(signed(alice, entries(alice, {}, [field]))), `missing ${field}`).toBe('bad_frame');
      for (const value of [42, null, '', new Uint8Array(4), ['x'], { s: 'x' }]) {
        expect(verdict(signed(alice, entries(alice, { [field]: value }))), `${field}=${String(value)}`).toBe('bad_frame');
      }
    }
    expect(verdict(signed(alice, entries(alice, { typ: 'x'.repeat(MAX_TYPE_LENGTH + 1) })))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { typ: 'x'.repeat(MAX_TYPE_LENGTH) })))).toBe('ok');
    const prefix = 'tm.fr.msg.';
    const longSub = prefix + 'x'.repeat(MAX_SUBJECT_LENGTH + 1 - prefix.length - 1 - alice.agentId.length) + '.' + alice.agentId;
    expect(longSub.length).toBe(MAX_SUBJECT_LENGTH + 1);
    expect(verdict(signed(alice, entries(alice, { sub: longSub })), longSub)).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { iss: 'x'.repeat(129) })))).toBe('bad_frame');
  });

  it('frame - missing data is bad_frame (nil data is fine)', () => {
    expect(verdict(signed(alice, entries(alice, {}, ['data'])))).toBe('bad_frame');
    expect(verdict(signed(alice, entries(alice, { data: null })))).toBe('ok');
  });

  it('frame - aud that is present but not a non-empty string is bad_frame', () => {
    for (const aud of [42, null, '', new Uint8Array(32), [bob.did], { did: bob.did }, 'x'.repeat(129)]) {
      expect(verdict(signed(alice, entries(alice, { aud }))), String(aud)).toBe('bad_frame');
    }
    expect(verdict(signed(alice, entries(alice, { aud: bob.did })))).toBe('ok');
  });

  it('frame - cor of the wrong length or type is bad_frame', () => {
    for (const cor of [randomBytes(15), randomBytes(17), randomBytes(0), 'abcdefghijklmnop', 42, null, Array.from(randomBytes(16))]) {
      expect(verdict(signed(alice, entries(alice, { cor }))), String(cor)).toBe('bad_frame');
    }
    expect(verdict(signed(alice, entries(alice, { cor: randomBytes(16) })))).toBe('ok');
  });
});

describe('frame bad_version', () => {
  it('frame - a version byte other than 1 is bad_version', () => {
    const { bytes } = signFrame(alice, { sub: SUB, typ: 't', iat: NOW });
    for (const version of [0, 2, 3, 0x7f, 0x80, 0xff]) {
      const f = Uint8Array.from(bytes);
      f[0] = version;
      expect(verdict(f), `version ${version}`).toBe('bad_version');
    }
  });

  it('frame - body.v = 2 with a valid signature is bad_version', () => {
    expect(verdict(signed(alice, entries(alice, { v: 2 })))).toBe('bad_version');
    expect(verdict(signed(alice, entries(alice, { v: 0 })))).toBe('bad_version');
    expect(verdict(signed(alice, entries(alice, { v: '1' })))).toBe('bad_version');
    expect(verdict(signed(alice, entries(alice, { v: 1.5 })))).toBe('bad_version');
    expect(verdict(signed(alice, entries(alice, {}, ['v'])))).toBe('bad_version');
  });

  it('frame - a body.v that cannot be turned into a string is bad_version, not an exception', () => {
    // A map whose "toString" is not callable: String(v) would throw.
    for (const v of [{ toString: 1 }, { toString: 1, valueOf: 1 }, { valueOf: 'x', toString: null }]) {
      const frame = signed(alice, entries(alice, { v }));
      let result: unknown;
      expect(() => {
        result = verdict(frame);
      }).not.toThrow();
      expect(result).toBe('bad_version');
    }
  });
});

describe('frame bad_signature', () => {
  const { bytes } = signFrame(alice, { sub: SUB, typ: 't', data: { n: 1 }, iat: NOW });

  it('frame - control: the unmodified frame verifies', () => {
    expect(verdict(bytes)).toBe('ok');
  });

  it('frame - a flipped bit anywhere in the body is bad_signature', () => {
    for (let bit = HEADER_LENGTH * 8; bit < bytes.length * 8; bit++) {
      expect(bulkVerdict(flipBit(bytes, bit), bit), `bit ${bit}`).toBe('bad_signature');
    }
  });

  it('frame - a flipped bit anywhere in the signature or public key is bad_signature', () => {
    for (let bit = 8; bit < HEADER_LENGTH * 8; bit++) {
      expect(bulkVerdict(flipBit(bytes, bit), bit), `bit ${bit}`).toBe('bad_signature');
    }
  });

  it('frame - the same body and signature under another public key is bad_signature', () => {
    const swapped = Uint8Array.from(bytes);
    swapped.set(bob.publicKey, 1);
    expect(verdict(swapped)).toBe('bad_signature');
  });

  it('frame - a signature over the body without the domain prefix is bad_signature', () => {
    const body = mapBytes(entries(alice));
    expect(verdict(assemble(alice, body, { signature: alice.sign(body) }))).toBe('bad_signature');
    expect(verdict(assemble(alice, body))).toBe('ok');
  });

  it('frame - appending or removing body bytes is bad_signature', () => {
    expect(verdict(Buffer.concat([bytes, Uint8Array.from([0xc0])]))).toBe('bad_signature');
    expect(verdict(bytes.subarray(0, bytes.length - 1))).toBe('bad_signature');
    expect(verdict(bytes.subarray(0, HEADER_LENGTH + 1))).toBe('bad_signature');
  });

  it('frame - an all-zero or non-canonical (S + L) signature is bad_signature', () => {
    const zero = Uint8Array.from(bytes);
    zero.fill(0, 33, 97);
    expect(verdict(zero)).toBe('bad_signature');
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 96; i >= 65; i--) s = (s << 8n) | BigInt(bytes[i]!);
    let sl = s + L;
    const mall = Uint8Array.from(bytes);
    for (let i = 65; i < 97; i++) {
      mall[i] = Number(sl & 0xffn);
      sl >>= 8n;
    }
    expect(verdict(mall)).toBe('bad_signature');
  });
});

describe('frame issuer_mismatch', () => {
  it('frame - a frame signed by A with iss = B is issuer_mismatch', () => {
    expect(verdict(signed(alice, entries(alice, { iss: bob.did })))).toBe('issuer_mismatch');
  });

  it('frame - iss that is not the canonical did:key of the signer is issuer_mismatch', () => {
    for (const iss of [
      alice.agentId,
      alice.did + '#key-1',
      alice.did.toUpperCase(),
      'did:key:' + alice.agentId.slice(0, -1),
      'hello',
      'did:web:example.com',
    ]) {
      expect(verdict(signed(alice, entries(alice, { iss }))), iss).toBe('issuer_mismatch');
    }
  });

  it("frame - a body naming A as iss, signed by B with B's key in the header, is issuer_mismatch", () => {
    const e = entries(alice);
    expect(verdict(signed(bob, e))).toBe('issuer_mismatch');
  });
});

describe('frame signFrame misuse', () => {
  const ok = { sub: SUB, typ: 't' };
  const cases: [string, Record<string, unknown>][] = [
    ['empty sub', { sub: '' }],
    ['sub too long', { sub: 'x'.repeat(MAX_SUBJECT_LENGTH + 1) }],
    ['sub not a string', { sub: 42 }],
    ['sub missing', { sub: undefined }],
    ['empty typ', { typ: '' }],
    ['typ too long', { typ: 'x'.repeat(MAX_TYPE_LENGTH + 1) }],
    ['typ not a string', { typ: {} }],
    ['id of 15 bytes', { id: new Uint8Array(15) }],
    ['id of 17 bytes', { id: new Uint8Array(17) }],
    ['cor of 15 bytes', { cor: new Uint8Array(15) }],
    ['cor of 32 bytes', { cor: new Uint8Array(32) }],
    ['negative iat', { iat: -1 }],
    ['fractional iat', { iat: 1.5 }],
    ['NaN iat', { iat: NaN }],
    ['infinite iat', { iat: Infinity }],
    ['unsafe iat', { iat: 2 ** 53 }],
    ['string iat', { iat: '1700000000000' }],
  ];
  for (const [name, over] of cases) {
    it(`frame - signFrame throws InvalidArgumentError for ${name}`, () => {
      expect(() => signFrame(alice, { ...ok, ...over } as never)).toThrow(InvalidArgumentError);
    });
  }

  it('frame - signFrame accepts the limits exactly', () => {
    const r = signFrame(alice, { sub: 'x'.repeat(MAX_SUBJECT_LENGTH), typ: 'y'.repeat(MAX_TYPE_LENGTH), iat: 0 });
    expect(openFrame(r.bytes).ok).toBe(true);
  });
});
