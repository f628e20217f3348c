import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainRecord, decodeBody, encodeBody, encodeStored, genesisHash, hashBody, readStored, type RecordFields } from '../src/index.ts';

const fields: RecordFields = {
  kind: 'frame',
  position: 1,
  time: 1_700_000_000_123,
  seqFirst: 7,
  seqLast: 7,
  subject: 'tm.demo.msg.a.b',
  verdict: 'ok',
  frame: Uint8Array.from([1, 2, 3]),
};

describe('record', () => {
  it('record - body layout is the documented one, byte for byte', () => {
    const body = encodeBody(fields);
    const expected = Buffer.concat([
      Buffer.from([1]),
      Buffer.from('0000000000000001', 'hex'),
      Buffer.from((1_700_000_000_123).toString(16).padStart(16, '0'), 'hex'),
      Buffer.from('0000000000000007', 'hex'),
      Buffer.from('0000000000000007', 'hex'),
      Buffer.from([0, 0, 0, 15]),
      Buffer.from('tm.demo.msg.a.b'),
      Buffer.from([0, 0, 0, 2]),
      Buffer.from('ok'),
      Buffer.from([0, 0, 0, 3, 1, 2, 3]),
    ]);
    expect(body.equals(expected)).toBe(true);
    const prev = genesisHash('demo');
    expect(Buffer.from(prev).toString('hex')).toBe(createHash('sha256').update('trustmesh/audit/v1/genesis\ndemo').digest('hex'));
    const hash = createHash('sha256').update('trustmesh/audit/v1\n').update(prev).update(expected).digest();
    expect(Buffer.from(hashBody(prev, body)).equals(hash)).toBe(true);
  });

  it('record - every byte of subject, frame and the fixed fields changes the hash', () => {
    const prev = genesisHash('demo');
    const base = Buffer.from(chainRecord(prev, fields).record.hash).toString('hex');
    const variants: Partial<RecordFields>[] = [
      { subject: 'tm.demo.msg.a.c' },
      { frame: Uint8Array.from([1, 2, 4]) },
      { frame: Uint8Array.from([1, 2, 3, 0]) },
      { verdict: 'bad_signature' },
      { time: fields.time + 1 },
      { seqFirst: 8, seqLast: 8 },
      { position: 2 },
      { kind: 'gap' },
    ];
    for (const v of variants) expect(Buffer.from(chainRecord(prev, { ...fields, ...v }).record.hash).toString('hex')).not.toBe(base);
    expect(Buffer.from(chainRecord(genesisHash('other'), fields).record.hash).toString('hex')).not.toBe(base);
  });

  it('record - length prefixes keep subject and frame apart (no ambiguous concatenation)', () => {
    const prev = genesisHash('demo');
    const a = chainRecord(prev, { ...fields, subject: 'ab', verdict: 'c' }).record.hash;
    const b = chainRecord(prev, { ...fields, subject: 'a', verdict: 'bc' }).record.hash;
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('record - decode inverts encode; stored form reads back; short and odd input is refused without throwing', () => {
    const body = encodeBody({ ...fields, position: 2 ** 40, seqFirst: 2 ** 53 - 1, seqLast: 2 ** 53 - 1 });
    const back = decodeBody(body);
    expect(back.ok && back.fields.position).toBe(2 ** 40);
    expect(back.ok && back.fields.seqLast).toBe(2 ** 53 - 1);
    const stored = encodeStored(body, new Uint8Array(32).fill(9));
    const unit = readStored(stored, 0);
    expect(unit.status).toBe('record');
    expect(readStored(stored.subarray(0, stored.length - 1), 0).status).toBe('incomplete');
    expect(readStored(Buffer.from([0, 0, 0, 1, 0]), 0).status).toBe('malformed');
    expect(decodeBody(body.subarray(0, 20))).toEqual({ ok: false, problem: 'bad_length' });
    const badKind = Buffer.from(body);
    badKind[0] = 9;
    expect(decodeBody(badKind)).toEqual({ ok: false, problem: 'bad_kind' });
    const big = Buffer.from(body);
    big.fill(0xff, 1, 9);
    expect(decodeBody(big)).toEqual({ ok: false, problem: 'bad_integer' });
  });

  it('record - misuse throws a typed error', () => {
    expect(() => encodeBody({ ...fields, position: 0 })).toThrowError(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => encodeBody({ ...fields, time: -1 })).toThrowError(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => hashBody(new Uint8Array(31), encodeBody(fields))).toThrowError(expect.objectContaining({ code: 'invalid_argument' }));
  });
});
