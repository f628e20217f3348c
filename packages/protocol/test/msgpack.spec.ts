import { describe, expect, it } from 'vitest';
import { generateKey, InvalidArgumentError, signFrame } from '../src/index.ts';
import { decodeBody, decodeStrict, MAX_NESTING, MsgpackError } from '@trustmesh/protocol/internal';

const b = (...values: number[]) => Uint8Array.from(values);
const str = (s: string) => {
  const bytes = Buffer.from(s, 'utf8');
  return [0xa0 | bytes.length, ...bytes];
};
/** `levels` nested arrays around nil: the outermost array is level 1 in decodeStrict. */
const nestedArrays = (levels: number) => b(...Array(levels - 1).fill(0x91), 0x90);

describe('msgpack strict decoder', () => {
  it('msgpack - decodes the standard scalar, str, bin, array and map forms', () => {
    expect(decodeStrict(b(0x7f))).toBe(127);
    expect(decodeStrict(b(0xe0))).toBe(-32);
    expect(decodeStrict(b(0xcd, 0x01, 0x00))).toBe(256);
    expect(decodeStrict(b(0xd1, 0xff, 0x00))).toBe(-256);
    expect(decodeStrict(b(0xd2, 0xff, 0xff, 0xff, 0xff))).toBe(-1);
    expect(decodeStrict(b(0xca, 0x3f, 0xc0, 0x00, 0x00))).toBe(1.5);
    expect(decodeStrict(b(0xc0, 0xc2, 0xc3).subarray(0, 1))).toBeNull();
    expect(decodeStrict(b(0xc4, 0x02, 0xaa, 0xbb))).toEqual(b(0xaa, 0xbb));
    expect(decodeStrict(b(0x92, 0xc3, 0xc2))).toEqual([true, false]);
    expect(decodeStrict(b(0x81, ...str('k'), ...str('v')))).toEqual({ k: 'v' });
    expect(decodeStrict(b(...str('héllo')))).toBe('héllo');
  });

  it('msgpack - integers beyond 2^53 decode exactly as bigint, never rounded', () => {
    expect(decodeStrict(b(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toBe(2n ** 64n - 1n);
    expect(decodeStrict(b(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0))).toBe(-(2n ** 63n));
    expect(decodeStrict(b(0xcf, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('msgpack - a "__proto__" key is plain data and does not change the prototype', () => {
    const out = decodeStrict(b(0x81, ...str('__proto__'), 0x81, ...str('polluted'), 0xc3)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('msgpack - nesting is accepted up to the limit and refused one level deeper', () => {
    expect(MAX_NESTING).toBe(32);
    expect(() => decodeStrict(nestedArrays(32))).not.toThrow();
    expect(() => decodeStrict(nestedArrays(33))).toThrow(MsgpackError);
  });

  it('msgpack - refuses what receivers must refuse, with MsgpackError only', () => {
    const bad: [string, Uint8Array][] = [
      ['0xc1', b(0xc1)],
      ['fixext1', b(0xd4, 0x01, 0x00)],
      ['timestamp ext', b(0xd6, 0xff, 0, 0, 0, 1)],
      ['ext8', b(0xc7, 0x01, 0x05, 0x00)],
      ['int key', b(0x81, 0x01, 0x02)],
      ['nil key', b(0x81, 0xc0, 0x02)],
      ['duplicate key', b(0x82, ...str('a'), 0x01, ...str('a'), 0x02)],
      ['invalid UTF-8', b(0xa2, 0xc3, 0x28)],
      ['invalid UTF-8 key', b(0x81, 0xa1, 0xff, 0x01)],
      ['truncated str', b(0xa5, 0x61)],
      ['truncated int', b(0xcd, 0x01)],
      ['array32 claiming 4 billion items', b(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0)],
      ['map32 claiming 4 billion entries', b(0xdf, 0xff, 0xff, 0xff, 0xff)],
      ['bin32 longer than the input', b(0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00)],
      ['trailing byte', b(0xc0, 0xc0)],
      ['empty input', b()],
    ];
    for (const [name, bytes] of bad) expect(() => decodeStrict(bytes), name).toThrow(MsgpackError);
  });

  it('msgpack - decodeBody tells int from float so v and iat can require int', () => {
    const body = b(0x82, ...str('i'), 0x01, ...str('f'), 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
    const { fields, ints } = decodeBody(body);
    expect(fields).toEqual({ i: 1, f: 1 });
    expect([...ints]).toEqual(['i']);
    expect(() => decodeBody(b(0x91, 0x01))).toThrow(/not a map/);
  });

  it('frame - signFrame refuses data that would not be standard MessagePack, before sending', () => {
    const key = generateKey();
    const sign = (data: unknown) => signFrame(key, { sub: `tm.m.msg.x.${key.agentId}`, typ: 't', data });
    expect(() => sign(new Date(0))).toThrow(InvalidArgumentError);
    expect(() => sign(new Map([[1, 'int key']]))).toThrow(InvalidArgumentError);
    expect(() => sign({ plain: [1, 'two', null, true, new Uint8Array([3])] })).not.toThrow();
  });
});
