/**
 * Checks @trustmesh/protocol against the wire test vectors (docs/vectors/frames.json,
 * docs/protocol.md §12), and the vectors against their generator.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  FRAME_VERSION,
  FrameVerifier,
  REJECT_REASONS,
  SIGNING_DOMAIN,
  fromHex,
  keyFromSeed,
  nobleEd25519,
  nodeEd25519,
  openFrame,
  signingInput,
  toHex,
  type RejectReason,
} from '@trustmesh/protocol';
import { VECTORS_PATH, renderVectors, type NegativeVector, type PositiveVector, type VectorFile } from '../docs/vectors/generate.ts';

const text = readFileSync(VECTORS_PATH, 'utf8');
const file = JSON.parse(text) as VectorFile;
const BACKENDS = ['node', 'noble'] as const;

// ---------------------------------------------------------------------------
// An independent, strict MessagePack reader (only what the spec needs), so the
// vectors prove the body is standard MessagePack rather than msgpackr's dialect.

class MpMap {
  constructor(readonly entries: [unknown, unknown][]) {}
}

function readMessagePack(buf: Uint8Array): unknown {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new Error(`truncated at ${pos}`);
  };
  const advance = (n: number) => {
    need(n);
    pos += n;
    return pos - n;
  };
  const u8 = () => buf[advance(1)]!;
  const u16 = () => view.getUint16(advance(2));
  const u32 = () => view.getUint32(advance(4));
  const take = (n: number) => {
    const at = advance(n);
    return buf.slice(at, at + n);
  };
  const int64 = (signed: boolean) => {
    need(8);
    const v = signed ? view.getBigInt64(pos) : view.getBigUint64(pos);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
      throw new Error('64-bit integer outside the safe range');
    return Number(v);
  };
  const str = (n: number) => utf8.decode(take(n));
  const array = (n: number) => Array.from({ length: n }, () => value());
  const map = (n: number) => {
    const entries: [unknown, unknown][] = [];
    for (let i = 0; i < n; i++) entries.push([value(), value()]);
    return new MpMap(entries);
  };
  function value(): unknown {
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f);
    if (b >= 0x90 && b <= 0x9f) return array(b & 0x0f);
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return take(u8());
      case 0xc5:
        return take(u16());
      case 0xc6:
        return take(u32());
      case 0xca:
        return view.getFloat32(advance(4));
      case 0xcb:
        return view.getFloat64(advance(8));
      case 0xcc:
        return u8();
      case 0xcd:
        return u16();
      case 0xce:
        return u32();
      case 0xcf:
        return int64(false);
      case 0xd0:
        return view.getInt8(advance(1));
      case 0xd1:
        return view.getInt16(advance(2));
      case 0xd2:
        return view.getInt32(advance(4));
      case 0xd3:
        return int64(true);
      case 0xd9:
        return str(u8());
      case 0xda:
        return str(u16());
      case 0xdb:
        return str(u32());
      case 0xdc:
        return array(u16());
      case 0xdd:
        return array(u32());
      case 0xde:
        return map(u16());
      case 0xdf:
        return map(u32());
      default:
        throw new Error(`unsupported MessagePack type 0x${b.toString(16)} at ${pos - 1}`);
    }
  }
  const out = value();
  if (pos !== buf.length) throw new Error(`${buf.length - pos} trailing bytes`);
  return out;
}

/** JSON view used by frames.json: maps need str keys, bin becomes { $bin: hex }. */
function toJson(v: unknown): unknown {
  if (v instanceof MpMap) {
    const out: Record<string, unknown> = {};
    for (const [k, val] of v.entries) {
      if (typeof k !== 'string') throw new Error('non-string map key');
      if (Object.hasOwn(out, k)) throw new Error(`duplicate key ${k}`);
      out[k] = toJson(val);
    }
    return out;
  }
  if (v instanceof Uint8Array) return { $bin: toHex(v) };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, val]) => [k, toJson(val)]));
  return v;
}

/** The protocol fields of a decoded body, in frames.json form. */
function fieldsFromBody(body: Record<string, unknown>): Record<string, unknown> {
  const f: Record<string, unknown> = { v: body.v, id_hex: toHex(body.id as Uint8Array), iss: body.iss, sub: body.sub };
  if (body.aud !== undefined) f.aud = body.aud;
  f.typ = body.typ;
  f.iat = body.iat;
  if (body.cor !== undefined) f.cor_hex = toHex(body.cor as Uint8Array);
  f.data = toJson(body.data);
  return f;
}

function verifierFor(
  v: { now_ms: number; receiver_did?: string; max_frame_bytes?: number; max_replay_entries?: number },
  backend: 'node' | 'noble',
) {
  return new FrameVerifier({
    now: () => v.now_ms,
    backend,
    ...(v.receiver_did !== undefined ? { self: v.receiver_did } : {}),
    ...(v.max_frame_bytes !== undefined ? { maxFrameBytes: v.max_frame_bytes } : {}),
    ...(v.max_replay_entries !== undefined ? { maxEntries: v.max_replay_entries } : {}),
  });
}

// ---------------------------------------------------------------------------

describe('vectors file', () => {
  it('vectors file - equals what the generator builds from the current code (no drift)', () => {
    expect(renderVectors()).toBe(text);
  });

  it('vectors file - has at least 5 positive vectors and covers every wire reject reason (not unsolicited nor the local ones)', () => {
    expect(file.positive.length).toBeGreaterThanOrEqual(5);
    const covered = new Set(file.negative.map((v) => v.reason));
    // unsolicited belongs to the request layer; the rest are local refusals after §7 (§8), not wire rules.
    const local = ['unsolicited', 'overloaded', 'killed', 'untrusted', 'policy'];
    const wanted = (Object.keys(REJECT_REASONS) as RejectReason[]).filter((r) => !local.includes(r));
    expect([...wanted].filter((r) => !covered.has(r))).toEqual([]);
    for (const v of file.negative) expect(Object.keys(REJECT_REASONS)).toContain(v.reason);
  });

  it('vectors file - names are unique', () => {
    const names = [...file.positive, ...file.negative].map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('vectors file - signer alice is RFC 8032 TEST 1 (seed -> public key)', () => {
    const alice = file.signers.find((s) => s.name === 'alice')!;
    expect(alice.seed_hex).toBe('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    expect(alice.public_key_hex).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(alice.did).toBe(`did:key:${alice.agent_id}`);
    expect(alice.agent_id).toMatch(/^z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
  });

  it('protocol.md - hex blocks in §12 are byte-identical to frames.json', () => {
    const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/<!-- vector (positive|negative)\/([\w-]+) (\w+) -->\s*```\n([\s\S]*?)```/g)];
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const [, kind, name, field, hex] of blocks) {
      const list: Record<string, unknown>[] = kind === 'positive' ? (file.positive as never) : (file.negative as never);
      const vector = list.find((v) => v.name === name);
      expect(vector, `${kind}/${name}`).toBeDefined();
      expect(hex!.replace(/\s+/g, ''), `${kind}/${name} ${field}`).toBe(vector![field!]);
    }
    const counts = /holds (\d+) positive vectors[\s\S]*?and (\d+)\s+negative vectors/.exec(doc);
    expect(counts?.slice(1).map(Number)).toEqual([file.positive.length, file.negative.length]);
  });

  it('independent decoder - reads a known standard MessagePack sample', () => {
    const sample = fromHex('83a161c0a162920aff' + 'a163c40201ff');
    expect(toJson(readMessagePack(sample))).toEqual({ a: null, b: [10, -1], c: { $bin: '01ff' } });
    expect(() => readMessagePack(fromHex('81a161c0c0'))).toThrow(/trailing/);
  });
});

describe.each(file.positive.map((v) => [v.name, v] as const))('positive vector %s', (name: string, v: PositiveVector) => {
  const frame = fromHex(v.frame_hex);
  const body = fromHex(v.body_hex);
  const publicKey = fromHex(v.public_key_hex);
  const signature = fromHex(v.signature_hex);

  it(`${name} - keyFromSeed gives the public key and did (node and noble)`, () => {
    for (const backend of BACKENDS) {
      const key = keyFromSeed(fromHex(v.seed_hex), { backend });
      expect(toHex(key.publicKey)).toBe(v.public_key_hex);
      expect(key.did).toBe(v.did);
    }
    expect(v.fields.iss).toBe(v.did);
  });

  it(`${name} - frame is version || public key || signature || body`, () => {
    expect(v.domain).toBe(SIGNING_DOMAIN);
    expect(Buffer.from(v.domain, 'utf8').length).toBe(13);
    expect(frame.length).toBe(1 + 32 + 64 + body.length);
    expect(frame[0]).toBe(FRAME_VERSION);
    expect(toHex(frame.subarray(1, 33))).toBe(v.public_key_hex);
    expect(toHex(frame.subarray(33, 97))).toBe(v.signature_hex);
    expect(toHex(frame.subarray(97))).toBe(v.body_hex);
  });

  it(`${name} - signature verifies over utf8(domain) || body with node and noble`, () => {
    const input = new Uint8Array(Buffer.concat([Buffer.from(v.domain, 'utf8'), body]));
    expect(toHex(input)).toBe(toHex(signingInput(body)));
    expect(nodeEd25519.verify(publicKey, input, signature)).toBe(true);
    expect(nobleEd25519.verify(publicKey, input, signature)).toBe(true);
    // ...and not over the body alone.
    expect(nodeEd25519.verify(publicKey, body, signature)).toBe(false);
  });

  it(`${name} - signing the body again with the seed gives the same signature (deterministic Ed25519)`, () => {
    const input = signingInput(body);
    const seed = fromHex(v.seed_hex);
    expect(toHex(nodeEd25519.sign(seed, input))).toBe(v.signature_hex);
    expect(toHex(nobleEd25519.sign(seed, input))).toBe(v.signature_hex);
  });

  it(`${name} - FrameVerifier accepts it on its subject at now_ms (node and noble)`, () => {
    for (const backend of BACKENDS) {
      const result = verifierFor(v, backend).verify(frame, { subject: v.subject });
      expect(result.ok ? 'ok' : `${result.reason}: ${result.detail}`).toBe('ok');
      if (result.ok) {
        expect(fieldsFromBody(result.frame as unknown as Record<string, unknown>)).toEqual(v.fields);
        expect(toHex(result.frame.publicKey)).toBe(v.public_key_hex);
      }
    }
  });

  it(`${name} - an independent MessagePack reader decodes the body to the same fields`, () => {
    const decoded = readMessagePack(body);
    expect(decoded).toBeInstanceOf(MpMap);
    const map = toJson(decoded) as Record<string, unknown>;
    const asBody: Record<string, unknown> = { ...map };
    asBody.id = fromHex((map.id as { $bin: string }).$bin);
    if (map.cor !== undefined) asBody.cor = fromHex((map.cor as { $bin: string }).$bin);
    // data stays in JSON form already; fieldsFromBody's toJson leaves it unchanged.
    expect(fieldsFromBody(asBody)).toEqual(v.fields);
    const opened = openFrame(frame);
    expect(opened.ok).toBe(true);
    if (opened.ok) expect(toJson(opened.frame.data)).toEqual(v.fields.data);
  });
});

describe.each(file.negative.map((v) => [v.name, v] as const))('negative vector %s', (name: string, v: NegativeVector) => {
  it.each(BACKENDS)(`${name} - FrameVerifier (%s) rejects it as ${v.reason}`, (backend) => {
    const verifier = verifierFor(v, backend);
    for (const earlier of v.preceded_by ?? []) {
      const first = verifier.verify(fromHex(earlier), { subject: v.subject });
      expect(first.ok ? 'ok' : `${first.reason}: ${first.detail}`).toBe('ok');
    }
    const result = verifier.verify(fromHex(v.frame_hex), { subject: v.subject });
    expect(result.ok ? 'ok' : result.reason).toBe(v.reason);
  });
});
