import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  equalBytes,
  FRAME_VERSION,
  FrameVerifier,
  generateKey,
  HEADER_LENGTH,
  isRejectReason,
  openFrame,
  signFrame,
  signingInput,
  subjects,
  type AgentKey,
  type VerifyResult,
} from '../src/index.ts';
import { prng } from '@trustmesh/test-utils';

/**
 * Verification must never throw on attacker bytes: every input below goes
 * through FrameVerifier.verify, and every outcome must be a result with a
 * known reason. A deterministic PRNG makes any failure reproducible.
 */
const SEED = 0x7e57f00d;
const NOW = 1_750_000_000_000;
const MESH = 'fz';

const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const bytes = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(256);
  return out;
};

const alice = generateKey();
const bob = generateKey();
const SUB = subjects.message(MESH, bob.agentId, alice.agentId);

interface Outcome {
  input: Uint8Array;
  result?: VerifyResult;
  error?: unknown;
}

function run(verifier: FrameVerifier, input: Uint8Array, subject = SUB): Outcome {
  try {
    return { input, result: verifier.verify(input, { subject }) };
  } catch (error) {
    return { input, error };
  }
}

/** Fails with the first offending input (hex) if anything escaped or was accepted. */
function expectAllRejected(outcomes: Outcome[]): Map<string, number> {
  const reasons = new Map<string, number>();
  for (const o of outcomes) {
    if (o.error !== undefined) {
      throw new Error(`exception escaped verify: ${String(o.error)} on ${Buffer.from(o.input).toString('hex').slice(0, 400)}`);
    }
    const r = o.result!;
    if (r.ok) throw new Error(`mutated/random frame accepted: ${Buffer.from(o.input).toString('hex').slice(0, 400)}`);
    if (!isRejectReason(r.reason)) throw new Error(`unknown reason ${String(r.reason)}`);
    if (typeof r.detail !== 'string') throw new Error(`detail is not a string for ${r.reason}`);
    reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  }
  return reasons;
}

/** A mix of valid frames: sizes, optional fields, nested data. */
function validFrames(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const datas: unknown[] = [
    null,
    0,
    'x',
    'y'.repeat(300),
    { a: 1, b: [1, 2, 3], c: { d: 'e' } },
    [true, false, null, -1, 2 ** 40, 1.25],
    new Uint8Array(64).fill(9),
    { nested: { deeper: { deepest: ['a', { b: new Uint8Array([1]) }] } } },
  ];
  for (let i = 0; i < 48; i++) {
    out.push(
      signFrame(alice, {
        sub: SUB,
        typ: i % 3 === 0 ? 'task.submit' : 'msg',
        data: datas[i % datas.length],
        iat: NOW - 1000 + i,
        ...(i % 2 === 0 ? { aud: bob.did } : {}),
        ...(i % 4 === 1 ? { cor: bytes(16) } : {}),
      }).bytes,
    );
  }
  return out;
}

const OTHER_FRAMES = Array.from({ length: 16 }, (_, i) => signFrame(alice, { sub: SUB, typ: 'other', data: i, iat: NOW }).bytes);

type Mutation = (frame: Uint8Array) => Uint8Array;

const mutations: Record<string, Mutation> = {
  flipOneBit(f) {
    const out = Uint8Array.from(f);
    const bit = int(f.length * 8);
    out[bit >> 3]! ^= 1 << (bit & 7);
    return out;
  },
  flipSeveralBits(f) {
    const out = Uint8Array.from(f);
    const n = 2 + int(6);
    for (let i = 0; i < n; i++) {
      const bit = int(f.length * 8);
      out[bit >> 3]! ^= 1 << (bit & 7);
    }
    return out; // may cancel out: checked by the caller
  },
  flipBitInHeader(f) {
    const out = Uint8Array.from(f);
    const bit = int(HEADER_LENGTH * 8);
    out[bit >> 3]! ^= 1 << (bit & 7);
    return out;
  },
  replaceByte(f) {
    const out = Uint8Array.from(f);
    const i = int(f.length);
    out[i] = (out[i]! + 1 + int(255)) & 0xff; // guaranteed different
    return out;
  },
  truncate(f) {
    return f.slice(0, int(f.length)); // 0 .. length-1
  },
  truncateBody(f) {
    return f.slice(0, HEADER_LENGTH + int(f.length - HEADER_LENGTH));
  },
  extend(f) {
    const tail = bytes(1 + int(32));
    const out = new Uint8Array(f.length + tail.length);
    out.set(f);
    out.set(tail, f.length);
    return out;
  },
  extendWithNil(f) {
    const out = new Uint8Array(f.length + 1);
    out.set(f);
    out[f.length] = 0xc0;
    return out;
  },
  insertBytes(f) {
    const at = 1 + int(f.length - 1);
    const ins = bytes(1 + int(8));
    const out = new Uint8Array(f.length + ins.length);
    out.set(f.subarray(0, at));
    out.set(ins, at);
    out.set(f.subarray(at), at + ins.length);
    return out;
  },
  deleteBytes(f) {
    const at = int(f.length - 1);
    const n = 1 + int(Math.min(8, f.length - at - 1));
    const out = new Uint8Array(f.length - n);
    out.set(f.subarray(0, at));
    out.set(f.subarray(at + n), at);
    return out;
  },
  swapBodies(f) {
    // Keep this frame's header, take another frame's body: a valid signature over the wrong bytes.
    const other = OTHER_FRAMES[int(OTHER_FRAMES.length)]!;
    const out = new Uint8Array(HEADER_LENGTH + other.length - HEADER_LENGTH);
    out.set(f.subarray(0, HEADER_LENGTH));
    out.set(other.subarray(HEADER_LENGTH), HEADER_LENGTH);
    return out;
  },
  malleateS(f) {
    // S + L: the classic Ed25519 malleability; must not verify.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 96; i >= 65; i--) s = (s << 8n) | BigInt(f[i]!);
    s += L;
    const out = Uint8Array.from(f);
    for (let i = 65; i < 97; i++) {
      out[i] = Number(s & 0xffn);
      s >>= 8n;
    }
    return out;
  },
};

describe('fuzz FrameVerifier', () => {
  it('fuzz - 10,000 random byte strings are all rejected with a known reason and no exception', () => {
    const verifier = new FrameVerifier({ now: () => NOW, self: bob.did });
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 4;
      let input: Uint8Array;
      if (kind === 0)
        input = bytes(int(256)); // anything, mostly short
      else if (kind === 1)
        input = bytes(HEADER_LENGTH + 1 + int(400)); // long enough to reach the signature check
      else {
        // Version byte right, a real public key: reaches the Ed25519 verify with garbage.
        input = bytes(HEADER_LENGTH + 1 + int(400));
        input[0] = FRAME_VERSION;
        if (kind === 3) input.set(alice.publicKey, 1);
      }
      outcomes.push(run(verifier, input));
    }
    const reasons = expectAllRejected(outcomes);
    expect(reasons.get('bad_frame')).toBeGreaterThan(0);
    expect(reasons.get('bad_version')).toBeGreaterThan(0);
    expect(reasons.get('bad_signature')).toBeGreaterThan(0);
  });

  it('fuzz - 10,000 bit-flipped, truncated and extended variants of valid frames are all rejected, none throws', () => {
    const frames = validFrames();
    // The originals are valid (checked on a separate verifier, so this one has no replay memory of them).
    const control = new FrameVerifier({ now: () => NOW, self: bob.did });
    for (const f of frames) expect(control.verify(f, { subject: SUB }).ok).toBe(true);

    const verifier = new FrameVerifier({ now: () => NOW, self: bob.did });
    const names = Object.keys(mutations);
    const outcomes: Outcome[] = [];
    const perMutation = new Map<string, number>();
    while (outcomes.length < 10_000) {
      const original = frames[int(frames.length)]!;
      const name = names[outcomes.length % names.length]!;
      const mutated = mutations[name]!(original);
      if (equalBytes(mutated, original)) continue; // a mutation that changed nothing is no test
      perMutation.set(name, (perMutation.get(name) ?? 0) + 1);
      outcomes.push(run(verifier, mutated));
    }
    const reasons = expectAllRejected(outcomes);
    expect(reasons.get('bad_signature')).toBeGreaterThan(5_000);
    expect(reasons.get('bad_frame')).toBeGreaterThan(0); // truncations below the header
    expect(reasons.get('bad_version')).toBeGreaterThan(0); // flips in the version byte
    for (const name of names) expect(perMutation.get(name), name).toBeGreaterThan(500);
    expect(verifier.replay.size).toBe(0);
  });

  it('fuzz - 3,000 correctly signed random or mutated bodies reach the MessagePack parser without an exception', () => {
    // The signature is valid here, so every byte goes through the body decoder and field checks.
    const packr = new Packr({ useRecords: false, variableMapSize: true });
    const assemble = (key: AgentKey, body: Uint8Array) => {
      const f = new Uint8Array(HEADER_LENGTH + body.length);
      f[0] = FRAME_VERSION;
      f.set(key.publicKey, 1);
      f.set(key.sign(signingInput(body)), 33);
      f.set(body, HEADER_LENGTH);
      return f;
    };
    const template = signFrame(alice, {
      sub: SUB,
      typ: 't',
      data: { list: [1, 'a', null], bin: new Uint8Array(3) },
      aud: bob.did,
      iat: NOW,
    }).bytes.subarray(HEADER_LENGTH);
    const verifier = new FrameVerifier({ now: () => NOW, self: bob.did });
    const outcomes: Outcome[] = [];
    let ok = 0;
    for (let i = 0; i < 3_000; i++) {
      let body: Uint8Array;
      switch (i % 4) {
        case 0: // random bytes after a map header
          body = bytes(1 + int(120));
          body[0] = 0x80 | int(16);
          break;
        case 1: {
          // the real body with a few random byte changes
          body = Uint8Array.from(template);
          for (let k = 1 + int(4); k > 0; k--) body[int(body.length)] = int(256);
          break;
        }
        case 2: // random extension types, str/bin/array/map headers at random points
          body = Uint8Array.from([
            0x81,
            0xa1,
            0x76,
            [0xc7, 0xc8, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xdc, 0xdd, 0xde, 0xdf, 0xd9, 0xda, 0xdb][int(14)]!,
            ...bytes(int(40)),
          ]);
          break;
        default: // structurally valid maps with random field values
          body = Buffer.from(
            packr.pack({
              v: [1, 2, '1', null, { toString: 1 }][int(5)],
              id: [bytes(16), bytes(int(20)), 'x'][int(3)],
              iss: [alice.did, bob.did, 7][int(3)],
              sub: [SUB, 'tm.x', ''][int(3)],
              typ: ['t', '', 5][int(3)],
              iat: [NOW, -1, 1.5, 'now', BigInt(NOW)][int(5)],
              data: [null, { toString: 1 }, { valueOf: 2 }, [1]][int(4)],
              ...(int(2) ? { aud: [bob.did, 1, ''][int(3)] } : {}),
              ...(int(2) ? { cor: [bytes(16), bytes(3)][int(2)] } : {}),
            }),
          );
      }
      const o = run(verifier, assemble(alice, body));
      if (o.result?.ok) ok++;
      else outcomes.push(o);
    }
    expectAllRejected(outcomes);
    expect(outcomes.length + ok).toBe(3_000);
    expect(outcomes.length).toBeGreaterThan(2_000);
  });

  it('fuzz - openFrame alone never throws on random input either', () => {
    for (let i = 0; i < 2_000; i++) {
      const input = bytes(int(300));
      if (i % 2) input[0] = FRAME_VERSION;
      let r: ReturnType<typeof openFrame> | undefined;
      expect(() => {
        r = openFrame(input, { maxFrameBytes: 200 });
      }).not.toThrow();
      expect(r!.ok).toBe(false);
      if (!r!.ok) expect(isRejectReason(r!.reason)).toBe(true);
    }
  });
});
