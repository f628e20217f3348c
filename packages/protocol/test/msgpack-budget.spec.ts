import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateKey, InvalidArgumentError, openFrame, signFrame } from '../src/index.ts';
import { decodeBody, decodeStrict, MsgpackError, sealFrame } from '../src/internal.ts';

/**
 * docs/protocol.md §4 rule 11, the work budget: at most 32768 items per body,
 * where every value (the body map included) and every map key is an item, a
 * map or array weighs 3 and a bin 10. The numbers here are the spec's, typed
 * in, not read from the implementation.
 */
const BUDGET = 32768;
const CONTAINER = 3;
const BIN = 10;

const u8 = (...v: number[]) => new Uint8Array(v);
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const array32 = (count: number, element: Uint8Array) =>
  cat(u8(0xdd, count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff), ...Array.from({ length: count }, () => element));
/** {"v": 1, "data": <data>}: 3 (map) + 4 (two keys, v) = 7 items before data's own weight. */
const body = (data: Uint8Array) => cat(u8(0x82, 0xa1, 0x76, 0x01, 0xa4, 0x64, 0x61, 0x74, 0x61), data);
const BODY_OVERHEAD = CONTAINER + 3;

function refusedForBudget(bytes: Uint8Array): boolean {
  try {
    decodeBody(bytes);
    return false;
  } catch (err) {
    expect(err).toBeInstanceOf(MsgpackError);
    expect((err as Error).message).toMatch(/more than 32768 items/);
    return true;
  }
}

describe('msgpack work budget (§4 rule 11)', () => {
  // data = array32 of n elements of one kind: BODY_OVERHEAD + CONTAINER (the array) + n × weight.
  const kinds: [string, Uint8Array, number][] = [
    ['nil', u8(0xc0), 1],
    ['positive fixint', u8(0x05), 1],
    ['empty str', u8(0xa0), 1],
    ['float64', u8(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0), 1],
    ['empty bin', u8(0xc4, 0x00), BIN],
    ['bin of 3 bytes', u8(0xc4, 0x03, 1, 2, 3), BIN],
    ['empty array', u8(0x90), CONTAINER],
    ['empty map', u8(0x80), CONTAINER],
    ['map {"": nil}', u8(0x81, 0xa0, 0xc0), CONTAINER + 2],
    ['array [nil]', u8(0x91, 0xc0), CONTAINER + 1],
  ];
  for (const [name, element, weight] of kinds) {
    it(`msgpack - a body of ${name} values exactly at the budget decodes; one value more is bad_frame material`, () => {
      const room = BUDGET - BODY_OVERHEAD - CONTAINER;
      const fits = Math.floor(room / weight);
      // Pad with nils to land exactly on the budget.
      const pad = room - fits * weight;
      const exact = body(
        cat(array32(fits + pad, u8(0xc0)).subarray(0, 5), ...Array.from({ length: fits }, () => element), new Uint8Array(pad).fill(0xc0)),
      );
      const decoded = decodeBody(exact).fields.data as unknown[];
      expect(decoded.length).toBe(fits + pad);
      const over = body(
        cat(
          array32(fits + pad + 1, u8(0xc0)).subarray(0, 5),
          ...Array.from({ length: fits }, () => element),
          new Uint8Array(pad + 1).fill(0xc0),
        ),
      );
      expect(refusedForBudget(over)).toBe(true);
    });
  }

  it('msgpack - map keys count: a map of n distinct keys with nil values weighs 3 + 2n', () => {
    const entries = (n: number) => {
      const parts: Uint8Array[] = [u8(0xde, n >> 8, n & 0xff)];
      for (let i = 0; i < n; i++) parts.push(u8(0xa4, ...Buffer.from(i.toString(16).padStart(4, '0'))), u8(0xc0));
      return cat(...parts);
    };
    // 16383 entries: 6 + 3 + 2 × 16383 = 32775 > 32768; 16379 entries: 32767.
    expect(() => decodeBody(body(entries(16379)))).not.toThrow();
    expect(refusedForBudget(body(entries(16380)))).toBe(true); // 32769
  });

  it('msgpack - a container whose declared count exceeds the budget is refused at its header, before its elements are read', () => {
    // 40,000 nils would fit the bytes but not the budget; the array's elements are never decoded:
    // a c1 right after the header would be reported otherwise.
    const bytes = body(cat(array32(40_000, u8(0xc0)).subarray(0, 5), u8(0xc1), new Uint8Array(39_999).fill(0xc0)));
    expect(refusedForBudget(bytes)).toBe(true);
    // And a count beyond the bytes left is refused as impossible, whatever the budget.
    expect(() => decodeBody(body(u8(0xdd, 0xff, 0xff, 0xff, 0xff)))).toThrow(/longer than the body/);
  });

  it('msgpack - decodeStrict applies the same budget to a standalone value', () => {
    expect(decodeStrict(array32(BUDGET - CONTAINER, u8(0xc0)))).toHaveLength(BUDGET - CONTAINER);
    expect(() => decodeStrict(array32(BUDGET - CONTAINER + 1, u8(0xc0)))).toThrow(/more than 32768 items/);
    expect(decodeStrict(u8(0xc4, 0x00))).toEqual(new Uint8Array(0));
  });

  it('msgpack - arrays that mix ints, floats, strings and containers decode to the same values', () => {
    const mixed = u8(0x96, 0x01, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xa1, 0x78, 0xc0, 0x90, 0xc4, 0x01, 0x07);
    expect(decodeStrict(mixed)).toEqual([1, 1.5, 'x', null, [], new Uint8Array([7])]);
  });

  it('msgpack - signFrame refuses data over the budget, so a sender never emits a frame its peers refuse', () => {
    const key = generateKey();
    const sub = `tm.demo.msg.${key.agentId}.${key.agentId}`;
    expect(() => signFrame(key, { sub, typ: 'x', data: new Array(BUDGET).fill(null) })).toThrow(InvalidArgumentError);
    expect(() => signFrame(key, { sub, typ: 'x', data: new Array(30_000).fill(null) })).not.toThrow();
  });

  it('msgpack - a validly signed body over the budget is bad_frame, attributed to its signer', () => {
    const key = generateKey();
    const frame = sealFrame(key, body(array32(BUDGET, u8(0xc0))));
    const result = openFrame(frame);
    expect(result).toMatchObject({ ok: false, reason: 'bad_frame', signer: key.did });
    expect(result.ok ? '' : result.detail).toMatch(/more than 32768 items/);
  });
});

describe('msgpack short UTF-8 strings', () => {
  /** Bytes that hit the interesting boundaries of RFC 3629 §4 often. */
  const interesting = [
    0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xee, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
  ];
  const strOf = (payload: Uint8Array) => cat(u8(0xd9, payload.length), payload);

  it('msgpack - the decoder agrees with node:buffer isUtf8 and TextDecoder on 20,000 short byte strings', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (let i = 0; i < 20_000; i++) {
      const length = 1 + (i % 12);
      const payload = Uint8Array.from(randomBytes(length), (r, j) => (i % 3 === 0 ? r : interesting[(r + j) % interesting.length]!));
      const valid = isUtf8(payload);
      if (valid) expect(decodeStrict(strOf(payload))).toBe(decoder.decode(payload));
      else expect(() => decodeStrict(strOf(payload)), Buffer.from(payload).toString('hex')).toThrow(/not valid UTF-8/);
    }
  });

  it('msgpack - the RFC 3629 edges: overlongs, surrogates and code points above U+10FFFF are refused', () => {
    const bad = [
      u8(0xc0, 0x80),
      u8(0xe0, 0x9f, 0xbf),
      u8(0xed, 0xa0, 0x80),
      u8(0xf0, 0x8f, 0xbf, 0xbf),
      u8(0xf4, 0x90, 0x80, 0x80),
      u8(0xe2, 0x82),
    ];
    for (const b of bad) expect(() => decodeStrict(strOf(b))).toThrow(/not valid UTF-8/);
    const good: [Uint8Array, string][] = [
      [u8(0xc2, 0x80), '\u0080'],
      [u8(0xe0, 0xa0, 0x80), '\u0800'],
      [u8(0xed, 0x9f, 0xbf), '\ud7ff'],
      [u8(0xf0, 0x90, 0x80, 0x80), '\u{10000}'],
      [u8(0xf4, 0x8f, 0xbf, 0xbf), '\u{10ffff}'],
    ];
    for (const [b, s] of good) expect(decodeStrict(strOf(b))).toBe(s);
  });
});
