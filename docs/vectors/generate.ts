/**
 * Deterministic generator of the TrustMesh wire test vectors (docs/protocol.md §12).
 *
 *   pnpm vectors            (= tsx docs/vectors/generate.ts)
 *
 * writes docs/vectors/frames.json. Everything is fixed (seeds, ids, iat values,
 * and Ed25519 is deterministic), so two runs give byte-identical output, and
 * test/vectors.spec.ts checks that `renderVectors()` equals the checked-in file.
 *
 * Well-formed frames come from the real sender path (`signFrame`). Frames a
 * correct sender never produces (duplicate keys, wrong types, other key order,
 * other integer widths, ...) are built with the small standard-MessagePack
 * encoder below and then signed, so that the receiver rule under test is the
 * first one they break.
 */
import { createHash, createPublicKey, verify as openSslVerify } from 'node:crypto';
import { realpathSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  didFromPublicKey,
  DEFAULT_WINDOW_MS,
  FRAME_VERSION,
  SIGNING_DOMAIN,
  equalBytes,
  fromHex,
  keyFromSeed,
  signFrame,
  signingInput,
  subjects,
  toHex,
  type AgentKey,
  type FrameInit,
  type RejectReason,
} from '@trustmesh/protocol';

// ---------------------------------------------------------------------------
// File format

/** Protocol fields of a body, as JSON. `data` maps bin to `{ "$bin": "<hex>" }`. */
export interface VectorFields {
  v: number;
  id_hex: string;
  iss: string;
  sub: string;
  aud?: string;
  typ: string;
  iat: number;
  cor_hex?: string;
  data: unknown;
}

export interface PositiveVector {
  name: string;
  note: string;
  seed_hex: string;
  public_key_hex: string;
  did: string;
  subject: string;
  domain: string;
  body_hex: string;
  signature_hex: string;
  frame_hex: string;
  now_ms: number;
  /** Verify as this agent (the frame's `aud`). */
  receiver_did?: string;
  /** Verify with this frame size limit instead of the default 1 MiB. */
  max_frame_bytes?: number;
  fields: VectorFields;
}

export interface NegativeVector {
  name: string;
  note: string;
  frame_hex: string;
  subject: string;
  now_ms: number;
  reason: RejectReason;
  /** Verify with this frame size limit instead of the default 1 MiB. */
  max_frame_bytes?: number;
  /** Verify as this agent. */
  receiver_did?: string;
  /** Replay memory bound of the verifier (default: large). */
  max_replay_entries?: number;
  /** Frames the same verifier must accept first, in order, on `subject` at `now_ms`. */
  preceded_by?: string[];
}

export interface VectorFile {
  description: string;
  source: string;
  defaults: { window_ms: number; max_frame_bytes: number };
  signers: { name: string; seed_hex: string; public_key_hex: string; did: string; agent_id: string }[];
  positive: PositiveVector[];
  negative: NegativeVector[];
}

// ---------------------------------------------------------------------------
// Fixed inputs

/** Seeds of RFC 8032 §7.1 TEST 1, TEST 2 and TEST 3. */
const SEEDS = {
  alice: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  bob: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
  carol: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
} as const;

const MESH = 'demo';
/** 2026-01-01T00:00:00.000Z */
const T0 = 1_767_225_600_000;
/** Receivers in the vectors check this long after a frame's iat. */
const LATENCY_MS = 250;
const WINDOW = DEFAULT_WINDOW_MS;

/** 16 fixed, random-looking bytes per label. */
function fixedId(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`trustmesh vector id ${label}`).digest().subarray(0, 16));
}

// ---------------------------------------------------------------------------
// Keys docs/protocol.md §5 refuses, and the signatures a laxer verifier accepts under them.

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
/**
 * The eight points of small order as [i]T, i = 0..7, for the order-8 point T
 * with encoding c717…03fa (speccheck case 0's key): the torsion subgroup is
 * cyclic, so [k]([a]T) = [k·a mod 8]T. Checked below: OpenSSL accepts every
 * forgery built from this table.
 */
const TORSION_HEX = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
];

/**
 * A signature R || 0 under a key equal, as a point, to [a]T: S = 0 passes the
 * cofactorless check iff R = −[k]A = [−k·a mod 8]T, with k = SHA-512(R || A || M)
 * mod L. Tries the eight R; undefined if none fits this message.
 */
function forgeUnderTorsionKey(keyBytes: Uint8Array, a: number, message: Uint8Array): Uint8Array | undefined {
  for (let j = 0; j < 8; j++) {
    const r = fromHex(TORSION_HEX[j]!);
    const digest = createHash('sha512').update(r).update(keyBytes).update(message).digest();
    let k = 0n;
    for (let i = 63; i >= 0; i--) k = (k << 8n) | BigInt(digest[i]!);
    k %= L;
    if (Number((((-k * BigInt(a)) % 8n) + 8n) % 8n) === j) return new Uint8Array([...r, ...new Uint8Array(32)]);
  }
  return undefined;
}

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** OpenSSL's verify without the key rule of §5: what these vectors must get past. */
function openSslAccepts(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  return openSslVerify(null, message, key, signature);
}

// ---------------------------------------------------------------------------
// A minimal standard MessagePack encoder, for bodies signFrame would never write.

const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
function be(value: bigint | number, width: number): Uint8Array {
  const out = new Uint8Array(width);
  let v = BigInt.asUintN(width * 8, BigInt(value));
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const mp = {
  nil: () => bytes(0xc0),
  bool: (b: boolean) => bytes(b ? 0xc3 : 0xc2),
  /** Smallest standard encoding of an integer. */
  int(n: number): Uint8Array {
    if (!Number.isSafeInteger(n)) throw new Error(`not a safe integer: ${n}`);
    if (n >= 0) {
      if (n < 0x80) return bytes(n);
      if (n < 0x100) return cat(bytes(0xcc), be(n, 1));
      if (n < 0x10000) return cat(bytes(0xcd), be(n, 2));
      if (n < 0x100000000) return cat(bytes(0xce), be(n, 4));
      return cat(bytes(0xcf), be(n, 8));
    }
    if (n >= -32) return bytes(n & 0xff);
    if (n >= -0x80) return cat(bytes(0xd0), be(n, 1));
    if (n >= -0x8000) return cat(bytes(0xd1), be(n, 2));
    if (n >= -0x80000000) return cat(bytes(0xd2), be(n, 4));
    return cat(bytes(0xd3), be(n, 8));
  },
  i64: (n: number) => cat(bytes(0xd3), be(n, 8)),
  u64: (n: number) => cat(bytes(0xcf), be(n, 8)),
  str(s: string): Uint8Array {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 32) return cat(bytes(0xa0 | b.length), b);
    if (b.length < 0x100) return cat(bytes(0xd9, b.length), b);
    return cat(bytes(0xda), be(b.length, 2), b);
  },
  bin(b: Uint8Array): Uint8Array {
    if (b.length < 0x100) return cat(bytes(0xc4, b.length), b);
    return cat(bytes(0xc5), be(b.length, 2), b);
  },
  array(items: Uint8Array[]): Uint8Array {
    if (items.length >= 16) throw new Error('array too long for this encoder');
    return cat(bytes(0x90 | items.length), ...items);
  },
  array16: (items: Uint8Array[]): Uint8Array => cat(bytes(0xdc), be(items.length, 2), ...items),
  /** String-keyed map; `map16` forces the (non-minimal) 0xde header. */
  map(entries: [string, Uint8Array][], map16 = false): Uint8Array {
    if (entries.length >= 16 && !map16) throw new Error('map too long for this encoder');
    const header = map16 ? cat(bytes(0xde), be(entries.length, 2)) : bytes(0x80 | entries.length);
    return cat(header, ...entries.flatMap(([k, v]) => [mp.str(k), v]));
  },
};

type Entries = [string, Uint8Array][];

/** The body entries exactly as signFrame writes them (order v,id,iss,sub,aud?,typ,iat,cor?,data; iat as int64). */
function bodyEntries(
  key: AgentKey,
  f: { id: Uint8Array; sub: string; aud?: string; typ: string; iat: number; cor?: Uint8Array; data: Uint8Array },
): Entries {
  const e: Entries = [
    ['v', mp.int(FRAME_VERSION)],
    ['id', mp.bin(f.id)],
    ['iss', mp.str(key.did)],
    ['sub', mp.str(f.sub)],
  ];
  if (f.aud !== undefined) e.push(['aud', mp.str(f.aud)]);
  e.push(['typ', mp.str(f.typ)], ['iat', mp.i64(f.iat)]);
  if (f.cor !== undefined) e.push(['cor', mp.bin(f.cor)]);
  e.push(['data', f.data]);
  return e;
}

const setEntry = (e: Entries, key: string, value: Uint8Array): Entries => e.map(([k, v]) => [k, k === key ? value : v]);
const dropEntry = (e: Entries, key: string): Entries => e.filter(([k]) => k !== key);

function assemble(version: number, publicKey: Uint8Array, signature: Uint8Array, body: Uint8Array): Uint8Array {
  return cat(bytes(version), publicKey, signature, body);
}

/** Signs arbitrary body bytes the way a sender does and builds the frame. */
function signBody(key: AgentKey, body: Uint8Array): Uint8Array {
  return assemble(FRAME_VERSION, key.publicKey, key.sign(signingInput(body)), body);
}

// ---------------------------------------------------------------------------
// JSON view of decoded fields

function jsonData(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bin: toHex(value) };
  if (Array.isArray(value)) return value.map(jsonData);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonData(v)]));
  }
  return value;
}

function fieldsOf(body: {
  v: number;
  id: Uint8Array;
  iss: string;
  sub: string;
  aud?: string;
  typ: string;
  iat: number;
  cor?: Uint8Array;
  data: unknown;
}): VectorFields {
  const f: VectorFields = { v: body.v, id_hex: toHex(body.id), iss: body.iss, sub: body.sub } as VectorFields;
  if (body.aud !== undefined) f.aud = body.aud;
  f.typ = body.typ;
  f.iat = body.iat;
  if (body.cor !== undefined) f.cor_hex = toHex(body.cor);
  f.data = jsonData(body.data);
  return f;
}

// ---------------------------------------------------------------------------
// Builder

export function buildVectors(): VectorFile {
  const alice = keyFromSeed(fromHex(SEEDS.alice));
  const bob = keyFromSeed(fromHex(SEEDS.bob));
  const carol = keyFromSeed(fromHex(SEEDS.carol));
  const seedOf = new Map<AgentKey, string>([
    [alice, SEEDS.alice],
    [bob, SEEDS.bob],
    [carol, SEEDS.carol],
  ]);

  const msgSub = (to: AgentKey, from: AgentKey) => subjects.message(MESH, to.agentId, from.agentId);
  const reqSub = (to: AgentKey, from: AgentKey) => subjects.request(MESH, to.agentId, from.agentId);
  const repSub = (to: AgentKey, from: AgentKey) => subjects.reply(MESH, to.agentId, from.agentId);
  const presenceSub = (from: AgentKey) => subjects.presence(MESH, from.agentId);

  const positive: PositiveVector[] = [];

  function splitFrame(frame: Uint8Array) {
    return { signature: frame.subarray(33, 97), body: frame.subarray(97) };
  }

  function addPositive(
    name: string,
    note: string,
    key: AgentKey,
    frame: Uint8Array,
    fields: VectorFields,
    extra: { now_ms?: number; receiver_did?: string; max_frame_bytes?: number } = {},
  ): void {
    const { signature, body } = splitFrame(frame);
    const v: PositiveVector = {
      name,
      note,
      seed_hex: seedOf.get(key)!,
      public_key_hex: toHex(key.publicKey),
      did: key.did,
      subject: fields.sub,
      domain: SIGNING_DOMAIN,
      body_hex: toHex(body),
      signature_hex: toHex(signature),
      frame_hex: toHex(frame),
      now_ms: extra.now_ms ?? fields.iat + LATENCY_MS,
      ...(extra.receiver_did !== undefined ? { receiver_did: extra.receiver_did } : {}),
      ...(extra.max_frame_bytes !== undefined ? { max_frame_bytes: extra.max_frame_bytes } : {}),
      fields,
    };
    positive.push(v);
  }

  /** A frame from the real sender path. */
  function send(key: AgentKey, init: FrameInit & { id: Uint8Array; iat: number }) {
    const signed = signFrame(key, init);
    return { frame: new Uint8Array(signed.bytes), fields: fieldsOf(signed.body) };
  }

  function positiveFromSender(
    name: string,
    note: string,
    key: AgentKey,
    init: FrameInit & { id: Uint8Array; iat: number },
    extra: { now_ms?: number; max_frame_bytes?: number } = {},
  ): Uint8Array {
    const { frame, fields } = send(key, init);
    addPositive(name, note, key, frame, fields, { ...extra, ...(init.aud !== undefined ? { receiver_did: init.aud } : {}) });
    return frame;
  }

  // --- positives -----------------------------------------------------------

  const requestId = fixedId('request');
  const requestId2 = fixedId('request-2');

  positiveFromSender('presence-join', 'alice (RFC 8032 TEST 1 seed) announces itself; presence has no aud', alice, {
    sub: presenceSub(alice),
    typ: 'tm.presence',
    id: fixedId('presence-join'),
    iat: T0,
    data: {
      status: 'join',
      name: 'alice',
      version: '0.1.0',
      capabilities: ['math.sum', 'chat.greet'],
      lineage: { model: 'example-model-1', prompt_hash: 'sha256:4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b' },
    },
  });

  positiveFromSender('presence-alive-minimal', 'bob answers a join with alive: no lineage, no capabilities', bob, {
    sub: presenceSub(bob),
    typ: 'tm.presence',
    id: fixedId('presence-alive'),
    iat: T0 + 1_000,
    data: { status: 'alive', name: 'bob', version: '0.1.0', capabilities: [] },
  });

  positiveFromSender('message-one-way', 'one-way message alice -> bob on the msg subject, aud = bob', alice, {
    sub: msgSub(bob, alice),
    aud: bob.did,
    typ: 'chat.greet',
    id: fixedId('message'),
    iat: T0 + 2_000,
    data: { text: 'hello, bob' },
  });

  positiveFromSender('request', 'request alice -> bob on the req subject; its id is the cor of the replies below', alice, {
    sub: reqSub(bob, alice),
    aud: bob.did,
    typ: 'math.sum',
    id: requestId,
    iat: T0 + 3_000,
    data: { numbers: [1, 2, 3] },
  });

  positiveFromSender('reply', 'bob replies to the request on tm.<mesh>.rep.<alice>.<bob>: typ tm.reply, cor = request id', bob, {
    sub: repSub(alice, bob),
    aud: alice.did,
    typ: 'tm.reply',
    cor: requestId,
    id: fixedId('reply'),
    iat: T0 + 3_004,
    data: 6,
  });

  positiveFromSender('error-reply', 'bob answers another request with tm.error { code, message }', bob, {
    sub: repSub(alice, bob),
    aud: alice.did,
    typ: 'tm.error',
    cor: requestId2,
    id: fixedId('error-reply'),
    iat: T0 + 4_000,
    data: { code: 'no_handler', message: "no handler for 'math.mul'" },
  });

  positiveFromSender('nil-data', 'data is nil (the key is present)', carol, {
    sub: msgSub(alice, carol),
    aud: alice.did,
    typ: 'ping',
    id: fixedId('nil-data'),
    iat: T0 + 5_000,
    data: null,
  });

  positiveFromSender(
    'nested-data-with-binary',
    'data mixes maps, arrays, bin, bool, nil, negative and wide integers and a float64',
    carol,
    {
      sub: msgSub(bob, carol),
      aud: bob.did,
      typ: 'blob.put',
      id: fixedId('nested'),
      iat: T0 + 6_000,
      data: {
        blob: Uint8Array.from({ length: 20 }, (_, i) => (i * 37) & 0xff),
        empty_bin: new Uint8Array(0),
        nested: { list: [true, false, null, -1, -200, 255, 65_535, 70_000, 'x'], ratio: 1.5, empty_map: {}, empty_list: [] },
      },
    },
  );

  const unicodeTyp = 'ünïcødé.задача.日本語';
  positiveFromSender(
    'unicode-typ',
    `typ and data use non-ASCII UTF-8 (typ is ${unicodeTyp.length} characters, ${Buffer.byteLength(unicodeTyp)} bytes)`,
    bob,
    {
      sub: msgSub(carol, bob),
      aud: carol.did,
      typ: unicodeTyp,
      id: fixedId('unicode'),
      iat: T0 + 7_000,
      data: { text: 'grüße, 世界 🔑' },
    },
  );

  positiveFromSender(
    'window-edge-past',
    'iat is exactly now - 30000 ms: still accepted (the window is inclusive)',
    alice,
    { sub: msgSub(carol, alice), aud: carol.did, typ: 'chat.greet', id: fixedId('edge-past'), iat: T0 + 8_000, data: { text: 'late' } },
    { now_ms: T0 + 8_000 + WINDOW },
  );

  positiveFromSender(
    'window-edge-future',
    'iat is exactly now + 30000 ms: still accepted (the window is inclusive)',
    alice,
    { sub: msgSub(carol, alice), aud: carol.did, typ: 'chat.greet', id: fixedId('edge-future'), iat: T0 + 9_000, data: { text: 'early' } },
    { now_ms: T0 + 9_000 - WINDOW },
  );

  {
    // A frame of exactly max_frame_bytes is accepted.
    const { frame, fields } = send(bob, {
      sub: msgSub(alice, bob),
      aud: alice.did,
      typ: 'chat.greet',
      id: fixedId('at-limit'),
      iat: T0 + 10_000,
      data: { text: 'exactly at the limit' },
    });
    addPositive('size-at-limit', 'the frame is exactly max_frame_bytes long: accepted (only larger is too_large)', bob, frame, fields, {
      receiver_did: alice.did,
      max_frame_bytes: frame.length,
    });
  }

  {
    // Receiver leniency: map16 header, keys in another order, an unknown key, iat as uint64.
    const id = fixedId('lenient');
    const sub = msgSub(bob, carol);
    const iat = T0 + 11_000;
    const body = mp.map(
      [
        ['data', mp.map([['text', mp.str('keys in any order')]])],
        ['x_future', mp.array([mp.str('unknown keys are ignored'), mp.int(1)])],
        ['iat', mp.u64(iat)],
        ['typ', mp.str('chat.greet')],
        ['aud', mp.str(bob.did)],
        ['sub', mp.str(sub)],
        ['iss', mp.str(carol.did)],
        ['id', mp.bin(id)],
        ['v', mp.int(1)],
      ],
      true,
    );
    addPositive(
      'receiver-leniency',
      'not what the reference sender writes, but valid: map16 header, reversed key order, an unknown key, iat as uint64 (0xcf)',
      carol,
      signBody(carol, body),
      { v: 1, id_hex: toHex(id), iss: carol.did, sub, aud: bob.did, typ: 'chat.greet', iat, data: { text: 'keys in any order' } },
      { receiver_did: bob.did },
    );
  }

  // Boundaries from the accept side: what is exactly at a limit is valid.
  {
    let deepest: unknown = [];
    for (let level = 3; level <= 32; level++) deepest = [deepest]; // data's outer array is level 2, the innermost level 32
    positiveFromSender(
      'limits-at-the-edge',
      'typ of exactly 128 UTF-8 bytes (64 x "é", 64 characters) and data nested to exactly level 32: both accepted',
      alice,
      { sub: msgSub(bob, alice), aud: bob.did, typ: 'é'.repeat(64), id: fixedId('edges'), iat: T0 + 12_000, data: deepest },
    );
    const maxIat = Number.MAX_SAFE_INTEGER;
    positiveFromSender(
      'iat-max',
      'iat = 2^53 - 1, the largest allowed value, with the receiver clock at the same instant',
      bob,
      { sub: msgSub(alice, bob), aud: alice.did, typ: 'chat.greet', id: fixedId('iat-max'), iat: maxIat, data: null },
      { now_ms: maxIat },
    );
  }

  {
    // Wide encodings a receiver must accept: map32 header, str16 sub, bin16 id, v as uint64.
    const id = fixedId('wide');
    const sub = msgSub(bob, carol);
    const iat = T0 + 13_000;
    const entries: [string, Uint8Array][] = [
      ['v', cat(bytes(0xcf), be(1, 8))],
      ['id', cat(bytes(0xc5), be(16, 2), id)],
      ['iss', mp.str(carol.did)],
      ['sub', cat(bytes(0xda), be(Buffer.byteLength(sub), 2), Buffer.from(sub, 'utf8'))],
      ['aud', mp.str(bob.did)],
      ['typ', mp.str('chat.greet')],
      ['iat', mp.i64(iat)],
      ['data', mp.str('wide encodings')],
    ];
    const body = cat(bytes(0xdf), be(entries.length, 4), ...entries.flatMap(([k, v]) => [mp.str(k), v]));
    addPositive(
      'wide-encodings',
      'map32 header, sub as str16, id as bin16, v as uint64: every valid width is accepted',
      carol,
      signBody(carol, body),
      { v: 1, id_hex: toHex(id), iss: carol.did, sub, aud: bob.did, typ: 'chat.greet', iat, data: 'wide encodings' },
      { receiver_did: bob.did },
    );
  }

  // Self-check: the hand encoder writes exactly what signFrame writes, so the
  // hand-built negatives below differ from a real frame only where intended.
  {
    const probe = send(alice, {
      sub: msgSub(bob, alice),
      aud: bob.did,
      typ: 't',
      cor: requestId,
      id: requestId2,
      iat: T0,
      data: { text: 'x' },
    });
    const hand = mp.map(
      bodyEntries(alice, {
        id: requestId2,
        sub: msgSub(bob, alice),
        aud: bob.did,
        typ: 't',
        iat: T0,
        cor: requestId,
        data: mp.map([['text', mp.str('x')]]),
      }),
    );
    if (!equalBytes(probe.frame.subarray(97), hand)) throw new Error('hand MessagePack encoder disagrees with signFrame');
  }

  // --- negatives -----------------------------------------------------------

  const negative: NegativeVector[] = [];
  function addNegative(
    name: string,
    note: string,
    frame: Uint8Array,
    subject: string,
    now_ms: number,
    reason: RejectReason,
    extra: { max_frame_bytes?: number; receiver_did?: string; max_replay_entries?: number; preceded_by?: Uint8Array[] } = {},
  ): void {
    const v: NegativeVector = { name, note, frame_hex: toHex(frame), subject, now_ms, reason };
    if (extra.max_frame_bytes !== undefined) v.max_frame_bytes = extra.max_frame_bytes;
    if (extra.receiver_did !== undefined) v.receiver_did = extra.receiver_did;
    if (extra.max_replay_entries !== undefined) v.max_replay_entries = extra.max_replay_entries;
    if (extra.preceded_by !== undefined) v.preceded_by = extra.preceded_by.map(toHex);
    negative.push(v);
  }

  // Base: a well-formed one-way message alice -> bob, and its hand-built body entries.
  const baseSub = msgSub(bob, alice);
  const baseIat = T0 + 20_000;
  const baseNow = baseIat + LATENCY_MS;
  const baseData = mp.map([['text', mp.str('hello, bob')]]);
  const base = (label: string, over: Partial<{ sub: string; aud: string; iat: number; typ: string }> = {}) =>
    bodyEntries(alice, {
      id: fixedId(label),
      sub: over.sub ?? baseSub,
      aud: over.aud ?? bob.did,
      typ: over.typ ?? 'chat.greet',
      iat: over.iat ?? baseIat,
      data: baseData,
    });
  const signed = (entries: Entries) => signBody(alice, mp.map(entries));
  const good = signed(base('good'));

  // too_large
  {
    let frame = good;
    for (let pad = 0; frame.length !== 400; pad++) {
      frame = signed(setEntry(base('too-large'), 'data', mp.map([['pad', mp.str('x'.repeat(pad))]])));
      if (frame.length > 400) throw new Error('cannot pad to 400 bytes');
    }
    addNegative('too_large', 'a valid 400-byte frame; the receiver limit is 399 bytes', frame, baseSub, baseNow, 'too_large', {
      max_frame_bytes: 399,
    });
    const junk = cat(bytes(0xff), frame.subarray(1));
    addNegative(
      'too_large-before-version',
      'too large is decided first: the version byte 0xff is never looked at',
      junk,
      baseSub,
      baseNow,
      'too_large',
      { max_frame_bytes: 399 },
    );
  }

  // bad_frame: length
  addNegative('bad_frame-empty', 'zero bytes', new Uint8Array(0), baseSub, baseNow, 'bad_frame');
  addNegative(
    'bad_frame-header-only',
    '97 bytes: a valid frame cut after the header (minimum is 98)',
    good.subarray(0, 97),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-short-beats-version',
    '50 bytes with version byte 0x02: length is checked before the version',
    cat(bytes(0x02), good.subarray(1, 50)),
    baseSub,
    baseNow,
    'bad_frame',
  );

  // bad_frame: body (each validly signed by alice, so the signature check passes)
  {
    const full = mp.map(base('truncated'));
    addNegative(
      'bad_frame-body-truncated',
      'signed body is a MessagePack map cut short (ends inside data)',
      signBody(alice, full.subarray(0, full.length - 3)),
      baseSub,
      baseNow,
      'bad_frame',
    );
  }
  addNegative(
    'bad_frame-body-not-map',
    'signed body is a MessagePack array [1, "x"]',
    signBody(alice, mp.array([mp.int(1), mp.str('x')])),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-body-not-msgpack',
    'signed body is the single byte 0xc1 (never used in MessagePack)',
    signBody(alice, bytes(0xc1)),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-duplicate-key',
    'typ appears twice (with the same value)',
    signed([...base('dup'), ['typ', mp.str('chat.greet')]]),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-trailing-bytes',
    'a valid body map followed by one extra byte (0xc0)',
    signBody(alice, cat(mp.map(base('trailing')), bytes(0xc0))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-id-15-bytes',
    'id is bin of 15 bytes',
    signed(setEntry(base('id15'), 'id', mp.bin(fixedId('id15').subarray(0, 15)))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-id-str',
    'id is a 16-character str, not bin',
    signed(setEntry(base('idstr'), 'id', mp.str('0123456789abcdef'))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative('bad_frame-missing-data', 'the data key is absent', signed(dropEntry(base('nodata'), 'data')), baseSub, baseNow, 'bad_frame');
  addNegative('bad_frame-missing-iat', 'the iat key is absent', signed(dropEntry(base('noiat'), 'iat')), baseSub, baseNow, 'bad_frame');
  addNegative('bad_frame-iat-negative', 'iat is -1', signed(setEntry(base('iatneg'), 'iat', mp.int(-1))), baseSub, baseNow, 'bad_frame');
  addNegative(
    'bad_frame-iat-str',
    'iat is a str of digits',
    signed(setEntry(base('iatstr'), 'iat', mp.str(String(baseIat)))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-typ-empty',
    'typ is the empty string',
    signed(setEntry(base('typempty'), 'typ', mp.str(''))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-typ-129',
    'typ is 129 characters (limit 128)',
    signed(base('typ129', { typ: 'a'.repeat(129) })),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-typ-129-utf8-bytes',
    'typ is 65 characters but 129 UTF-8 bytes (64 x "é" + "a"): limits count bytes, not characters',
    signed(base('typ129bytes', { typ: 'é'.repeat(64) + 'a' })),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-aud-nil',
    'aud is present but nil',
    signed(setEntry(base('audnil'), 'aud', mp.nil())),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-cor-8-bytes',
    'cor is bin of 8 bytes',
    signed([...base('cor8'), ['cor', mp.bin(fixedId('cor8').subarray(0, 8))]]),
    baseSub,
    baseNow,
    'bad_frame',
  );
  // bad_frame: the strict MessagePack rules of §4 (1, 2, 7, 9), each in an otherwise valid signed body
  const f64 = (n: number) => {
    const out = new Uint8Array(9);
    out[0] = 0xcb;
    new DataView(out.buffer).setFloat64(1, n);
    return out;
  };
  const withData = (label: string, data: Uint8Array) => signed(setEntry(base(label), 'data', data));
  addNegative(
    'bad_frame-iat-float',
    'iat is a float64 with an integral value (must be int)',
    signed(setEntry(base('iatfloat'), 'iat', f64(baseIat))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_version-v-float',
    'v is the float64 1.0 (must be int)',
    signed(setEntry(base('vfloat'), 'v', f64(1))),
    baseSub,
    baseNow,
    'bad_version',
  );
  addNegative(
    'bad_frame-data-duplicate-key',
    'a map inside data has the key "a" twice',
    withData('datadup', cat(bytes(0x82), mp.str('a'), mp.int(1), mp.str('a'), mp.int(2))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-data-int-key',
    'a map inside data has the int key 1',
    withData('dataintkey', cat(bytes(0x81), mp.int(1), mp.int(2))),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-data-invalid-utf8',
    'a str inside data is the invalid UTF-8 sequence c3 28',
    withData('datautf8', bytes(0xa2, 0xc3, 0x28)),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-data-ext',
    'data is fixext1 (type 1): ext types are not allowed',
    withData('dataext', bytes(0xd4, 0x01, 0x00)),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative(
    'bad_frame-data-timestamp',
    'data is the timestamp ext type -1 (fixext4): ext types are not allowed',
    withData('datats', bytes(0xd6, 0xff, 0x00, 0x00, 0x00, 0x01)),
    baseSub,
    baseNow,
    'bad_frame',
  );
  addNegative('bad_frame-data-c1', 'data is the never-used byte 0xc1', withData('datac1', bytes(0xc1)), baseSub, baseNow, 'bad_frame');
  addNegative(
    'bad_frame-nesting-33',
    'data is 32 nested arrays, so the innermost is at level 33 (the body map is level 1; limit 32)',
    withData('depth33', cat(...Array.from({ length: 31 }, () => bytes(0x91)), bytes(0x90))),
    baseSub,
    baseNow,
    'bad_frame',
  );

  // bad_frame: the work budget of §4 rule 11. The body of base() with an array as
  // data weighs 30 items before the array's elements: the map 3, its eight keys 8,
  // six scalar values 6, the id bin 10, the data array 3.
  {
    const budget = 32768;
    const bins = 1000; // 10 each
    const maps = 7500; // 3 each
    const nils = budget - 30 - bins * 10 - maps * 3; // 1 each
    const items = (extra: Uint8Array[]) => [
      ...Array.from({ length: bins }, () => mp.bin(new Uint8Array(0))),
      ...Array.from({ length: maps }, () => bytes(0x80)),
      ...Array.from({ length: nils }, () => mp.nil()),
      ...extra,
    ];
    const atLimit = base('budget');
    const atLimitBody = mp.map(setEntry(atLimit, 'data', mp.array16(items([]))));
    addPositive(
      'work-budget-at-limit',
      `data is an array of ${bins} empty bins (10 items each), ${maps} empty maps (3 each) and ${nils} nils (1 each): the body counts exactly 32768 items, the budget`,
      alice,
      signBody(alice, atLimitBody),
      {
        v: 1,
        id_hex: toHex(fixedId('budget')),
        iss: alice.did,
        sub: baseSub,
        aud: bob.did,
        typ: 'chat.greet',
        iat: baseIat,
        data: [
          ...Array.from({ length: bins }, () => ({ $bin: '' })),
          ...Array.from({ length: maps }, () => ({})),
          ...Array.from({ length: nils }, () => null),
        ],
      },
      { now_ms: baseNow, receiver_did: bob.did },
    );
    const over = (extra: Uint8Array[], dropNils: number) => {
      const list = items(extra);
      list.splice(bins + maps, dropNils);
      return signed(setEntry(base('budget'), 'data', mp.array16(list)));
    };
    addNegative(
      'bad_frame-work-budget-exceeded',
      'work-budget-at-limit with one more nil: 32769 items',
      over([mp.nil()], 0),
      baseSub,
      baseNow,
      'bad_frame',
    );
    addNegative(
      'bad_frame-work-budget-bin-weight',
      'work-budget-at-limit with one nil replaced by an empty bin: 32777 items (a bin weighs 10)',
      over([mp.bin(new Uint8Array(0))], 1),
      baseSub,
      baseNow,
      'bad_frame',
    );
    addNegative(
      'bad_frame-work-budget-container-weight',
      'work-budget-at-limit with one nil replaced by an empty array: 32770 items (an array weighs 3)',
      over([bytes(0x90)], 1),
      baseSub,
      baseNow,
      'bad_frame',
    );
  }

  // bad_version
  addNegative(
    'bad_version-header',
    'a valid frame with the version byte changed to 0x02',
    cat(bytes(0x02), good.subarray(1)),
    baseSub,
    baseNow,
    'bad_version',
  );
  addNegative(
    'bad_version-body',
    'header version 1, signed body has v = 2',
    signed(setEntry(base('v2'), 'v', mp.int(2))),
    baseSub,
    baseNow,
    'bad_version',
  );
  addNegative(
    'bad_version-body-v-absent',
    'signed body has no v key',
    signed(dropEntry(base('nov'), 'v')),
    baseSub,
    baseNow,
    'bad_version',
  );
  addNegative(
    'bad_version-beats-bad-fields',
    'signed body is { v: 2 } alone: v is checked before the other fields',
    signBody(alice, mp.map([['v', mp.int(2)]])),
    baseSub,
    baseNow,
    'bad_version',
  );

  // bad_signature
  {
    const flipped = good.slice();
    flipped[flipped.length - 1]! ^= 0x01;
    addNegative(
      'bad_signature-flipped-body-bit',
      'one bit of the last body byte flipped after signing',
      flipped,
      baseSub,
      baseNow,
      'bad_signature',
    );

    const wrongKey = cat(good.subarray(0, 1), bob.publicKey, good.subarray(33));
    // Delivered on a subject of bob's, so that the header key is the sender the
    // subject names and only the signature is wrong, whichever is checked first.
    addNegative(
      'bad_signature-wrong-public-key',
      "alice's frame with bob's public key in the header, delivered on a subject whose last token is bob's agent id",
      wrongKey,
      msgSub(carol, bob),
      baseNow,
      'bad_signature',
    );

    const body = mp.map(base('nodomain'));
    const noDomain = assemble(FRAME_VERSION, alice.publicKey, alice.sign(body), body);
    addNegative(
      'bad_signature-no-domain-prefix',
      'signed over the body alone, without the "trustmesh/v1\\n" prefix',
      noDomain,
      baseSub,
      baseNow,
      'bad_signature',
    );

    // S' = S + L: the same group element, but not canonical (RFC 8032 requires S < L).
    const sig = good.subarray(33, 97);
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    const s2 = s + L;
    const malleable = good.slice();
    for (let i = 0; i < 32; i++) malleable[65 + i] = Number((s2 >> BigInt(8 * i)) & 0xffn);
    addNegative(
      'bad_signature-s-not-canonical',
      'the valid signature with S replaced by S + L (non-canonical S)',
      malleable,
      baseSub,
      baseNow,
      'bad_signature',
    );

    const offCurve = new Uint8Array(32);
    offCurve[0] = 2; // y = 2 does not decode to a curve point
    addNegative(
      'bad_signature-key-not-on-curve',
      "public key 0200..00 (y = 2) is not a point on the curve; delivered on a subject whose last token is that key's agent id",
      cat(bytes(1), offCurve, good.subarray(33)),
      subjects.message(MESH, bob.agentId, didFromPublicKey(offCurve).slice('did:key:'.length)),
      baseNow,
      'bad_signature',
    );

    const garbage = assemble(FRAME_VERSION, alice.publicKey, new Uint8Array(64).fill(0x5a), bytes(0x91, 0xc1));
    addNegative(
      'bad_signature-beats-bad-body',
      'unsigned garbage body: the signature is checked before the body is parsed',
      garbage,
      baseSub,
      baseNow,
      'bad_signature',
    );
  }

  // bad_signature: public keys §5 refuses (K1–K3), each with a signature R || 0
  // that OpenSSL alone accepts. The subject names the key's own agent id and iss
  // its DID, so the key rule is the only rule the frame breaks.
  {
    const refusedKeys: [string, string, string, number][] = [
      ['bad_signature-small-order-key', 'a point of order 8 (K3)', TORSION_HEX[5]!, 5],
      ['bad_signature-neutral-key', 'the neutral element 0100..00, order 1 (K3): R || 0 verifies for every message', TORSION_HEX[0]!, 0],
      [
        'bad_signature-key-y-not-reduced',
        'eeff..ff7f: y = p + 1, the neutral element written with an unreduced y (K1)',
        'ee' + 'ff'.repeat(30) + '7f',
        0,
      ],
      [
        'bad_signature-key-x0-sign-bit',
        'ecff..ffff: the order-2 point (0, -1) with the sign bit set although x = 0 (K2, K3)',
        'ec' + 'ff'.repeat(31),
        4,
      ],
    ];
    for (const [name, what, hex, a] of refusedKeys) {
      const pk = fromHex(hex);
      const did = didFromPublicKey(pk);
      const sub = subjects.message(MESH, bob.agentId, did.slice('did:key:'.length));
      for (let attempt = 0; ; attempt++) {
        if (attempt === 64) throw new Error(`no forgery found for ${name}`);
        const body = mp.map(setEntry(base(`${name}-${attempt}`, { sub }), 'iss', mp.str(did)));
        const signature = forgeUnderTorsionKey(pk, a, signingInput(body));
        if (signature === undefined) continue;
        if (!openSslAccepts(pk, signingInput(body), signature)) throw new Error(`OpenSSL refuses the forgery for ${name}`);
        addNegative(
          name,
          `public key ${what}; the signature R || 0 verifies under OpenSSL's equation without the key rule, so only §5 refuses it`,
          assemble(FRAME_VERSION, pk, signature, body),
          sub,
          baseNow,
          'bad_signature',
          { receiver_did: bob.did },
        );
        break;
      }
    }
  }

  // issuer_mismatch
  addNegative(
    'issuer_mismatch',
    "alice signs a body claiming iss = bob's DID and sub = bob's subject, delivered on her own (issuer is checked before subject)",
    signed(setEntry(base('iss-bob', { sub: msgSub(carol, bob), aud: carol.did }), 'iss', mp.str(bob.did))),
    msgSub(carol, alice),
    baseNow,
    'issuer_mismatch',
  );
  addNegative(
    'issuer_mismatch-agent-id-only',
    "iss is alice's agent id without the did:key: prefix",
    signed(setEntry(base('iss-agentid'), 'iss', mp.str(alice.agentId))),
    baseSub,
    baseNow,
    'issuer_mismatch',
  );

  // subject_mismatch
  addNegative(
    'subject_mismatch-rerouted',
    'signed for msg.<bob>.<alice>, delivered on msg.<carol>.<alice>',
    good,
    msgSub(carol, alice),
    baseNow,
    'subject_mismatch',
  );
  addNegative(
    'subject_mismatch-other-mesh',
    'signed in mesh "demo", replayed into mesh "other"',
    good,
    subjects.message('other', bob.agentId, alice.agentId),
    baseNow,
    'subject_mismatch',
  );
  {
    const sub = msgSub(bob, carol);
    addNegative(
      'subject_mismatch-sender-token',
      "alice signs sub = msg.<bob>.<carol> and it arrives there: sub matches, but the last token is not alice's agent id",
      signed(base('sender-token', { sub })),
      sub,
      baseNow,
      'subject_mismatch',
    );
  }
  addNegative(
    'subject_mismatch-beats-audience',
    'rerouted and addressed to bob, received by carol: subject is checked before audience',
    good,
    msgSub(carol, alice),
    baseNow,
    'subject_mismatch',
    { receiver_did: carol.did },
  );

  // audience_mismatch
  {
    const sub = msgSub(carol, alice);
    addNegative(
      'audience_mismatch',
      'aud = bob, received by carol (on the subject it was signed for)',
      signed(base('aud', { sub })),
      sub,
      baseNow,
      'audience_mismatch',
      {
        receiver_did: carol.did,
      },
    );
    addNegative(
      'audience_mismatch-beats-stale',
      'aud = bob, received by carol, and also stale: audience is checked before time',
      signed(base('aud-stale', { sub })),
      sub,
      baseIat + WINDOW + 1,
      'audience_mismatch',
      { receiver_did: carol.did },
    );
  }

  // stale / future
  addNegative('stale', 'iat = now - 30001 ms', signed(base('stale')), baseSub, baseIat + WINDOW + 1, 'stale', { receiver_did: bob.did });
  addNegative('future', 'iat = now + 30001 ms', signed(base('future')), baseSub, baseIat - WINDOW - 1, 'future', { receiver_did: bob.did });

  // replay
  {
    const once = signed(base('replay'));
    addNegative('replay', 'the same frame a second time', once, baseSub, baseNow, 'replay', { receiver_did: bob.did, preceded_by: [once] });

    const a = signed(base('flood-a', { iat: baseIat }));
    const b = signed(base('flood-b', { iat: baseIat + 2_000 }));
    addNegative(
      'replay-after-eviction-is-stale',
      'replay memory holds 1 entry: accepting b forgets a, so a replayed is refused as stale, never accepted again',
      a,
      baseSub,
      baseIat + 2_000 + LATENCY_MS,
      'stale',
      { receiver_did: bob.did, max_replay_entries: 1, preceded_by: [a, b] },
    );
  }

  // equivocation: another frame signed with an id already accepted (only the signer can make it)
  {
    const first = signed(base('equivocation'));
    const second = signBody(
      alice,
      mp.map(
        bodyEntries(alice, {
          id: fixedId('equivocation'),
          sub: baseSub,
          aud: bob.did,
          typ: 'chat.greet',
          iat: baseIat,
          data: mp.str('another text'),
        }),
      ),
    );
    addNegative(
      'equivocation',
      'two different frames signed by alice with the same id: the second is equivocation, not replay',
      second,
      baseSub,
      baseNow,
      'equivocation',
      {
        receiver_did: bob.did,
        preceded_by: [first],
      },
    );
  }

  // the header key against the subject's sender (rule 3a), before the signature
  {
    const broken = Uint8Array.from(good);
    broken[40]! ^= 1; // inside the signature
    addNegative(
      'subject_mismatch-sender-before-signature',
      "a frame with a broken signature, on carol's subject: the header key is not the sender the subject names, refused before the signature check",
      broken,
      msgSub(bob, carol),
      baseNow,
      'subject_mismatch',
      { receiver_did: bob.did },
    );
  }

  return {
    description:
      'TrustMesh wire protocol v1 test vectors (docs/protocol.md §12). Positive vectors MUST be accepted by a receiver at now_ms on subject ' +
      '(as receiver_did, with max_frame_bytes when given); negative vectors MUST be rejected with exactly reason, after the frames in ' +
      'preceded_by (if any) were accepted by the same receiver. Window: defaults.window_ms for every vector. All byte strings are lowercase hex.',
    source: 'generated by docs/vectors/generate.ts from @trustmesh/protocol',
    defaults: { window_ms: WINDOW, max_frame_bytes: 1024 * 1024 },
    signers: [
      ['alice', alice],
      ['bob', bob],
      ['carol', carol],
    ].map(([name, key]) => {
      const k = key as AgentKey;
      return { name: name as string, seed_hex: seedOf.get(k)!, public_key_hex: toHex(k.publicKey), did: k.did, agent_id: k.agentId };
    }),
    positive,
    negative,
  };
}

/** The exact bytes of docs/vectors/frames.json. */
export function renderVectors(): string {
  return JSON.stringify(buildVectors(), null, 2) + '\n';
}

export const VECTORS_PATH = fileURLToPath(new URL('./frames.json', import.meta.url));

function isMain(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(resolve(arg)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const text = renderVectors();
  writeFileSync(VECTORS_PATH, text);
  const file = JSON.parse(text) as VectorFile;
  console.log(`wrote ${VECTORS_PATH}: ${file.positive.length} positive, ${file.negative.length} negative vectors`);
}
