import { isUtf8 } from 'node:buffer';

/**
 * Strict MessagePack decoder for frame bodies (docs/protocol.md §4).
 *
 * msgpackr stays the encoder; decoding attacker-signed bytes needs rules a
 * general decoder does not enforce, and every receiver must enforce them alike:
 * str keys only, no duplicate keys, valid UTF-8, no ext types, no 0xc1, bounded
 * nesting, a bounded number of items (the work budget), nothing after the
 * value. Integers outside the safe range decode to
 * bigint so no value is silently rounded.
 */
export const MAX_NESTING = 32;
/**
 * Work budget (docs/protocol.md §4 rule 11): a body holds at most this many
 * items. Every value at any depth, the body map included, is one item and every
 * map key is one item; a map or an array weighs {@link CONTAINER_WEIGHT} and a
 * bin {@link BIN_WEIGHT}, because each is a separate object to build (a bin
 * even two: a view and its buffer). Depth alone does not bound the work: a
 * 1 MiB body of empty bins is half a million buffers.
 */
export const MAX_BODY_ITEMS = 32768;
export const CONTAINER_WEIGHT = 3;
export const BIN_WEIGHT = 10;

export class MsgpackError extends Error {}

export type ValueKind = 'int' | 'float' | 'other';

interface State {
  bytes: Buffer;
  view: DataView;
  pos: number;
  /** Items the body may still hold: the work budget (§4 rule 11). */
  items: number;
  /** The budget it started with, for messages. */
  limit: number;
  /** Kind of the last scalar read; lets callers require an int (not an integral float). */
  kind: ValueKind;
}

function fail(message: string): never {
  throw new MsgpackError(message);
}

function need(s: State, n: number): void {
  if (s.pos + n > s.bytes.length) fail('truncated');
}

function u8(s: State): number {
  need(s, 1);
  return s.bytes[s.pos++]!;
}
function u16(s: State): number {
  need(s, 2);
  const v = s.view.getUint16(s.pos);
  s.pos += 2;
  return v;
}
function u32(s: State): number {
  need(s, 4);
  const v = s.view.getUint32(s.pos);
  s.pos += 4;
  return v;
}

function int64(s: State, signed: boolean): number | bigint {
  need(s, 8);
  const hi = s.view.getUint32(s.pos);
  if (hi <= 0x1fffff) {
    // 0 <= value < 2^53: exact as a number without a BigInt round trip (iat takes this path).
    const lo = s.view.getUint32(s.pos + 4);
    s.pos += 8;
    return hi * 0x100000000 + lo;
  }
  const big = signed ? s.view.getBigInt64(s.pos) : s.view.getBigUint64(s.pos);
  s.pos += 8;
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function str(s: State, length: number): string {
  if (length === 0) return '';
  need(s, length);
  const b = s.bytes;
  const start = s.pos;
  const end = start + length;
  s.pos = end;
  // ASCII (every key, DID, subject and type) is valid UTF-8 by construction:
  // one scan and a latin1 slice; anything else takes the full UTF-8 check.
  let i = start;
  while (i < end && b[i]! < 0x80) i++;
  if (i === end) return b.toString('latin1', start, end);
  // Short strings are checked here: a Buffer view for isUtf8 would cost more than the string.
  if (length <= SHORT_UTF8 ? !isUtf8Range(b, i, end) : !isUtf8(b.subarray(start, end))) fail('str is not valid UTF-8');
  return b.toString('utf8', start, end);
}

const SHORT_UTF8 = 64;

/** Whether b[i, end) is UTF-8 as RFC 3629 §4 defines it: no overlong forms, no surrogates, nothing above U+10FFFF. */
export function isUtf8Range(b: Uint8Array, i: number, end: number): boolean {
  while (i < end) {
    const c = b[i++]!;
    if (c < 0x80) continue;
    let more: number;
    let lo = 0x80; // the allowed range of the second byte
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c === 0xe0)
        lo = 0xa0; // no overlong
      else if (c === 0xed) hi = 0x9f; // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c === 0xf0)
        lo = 0x90; // no overlong
      else if (c === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return false;
    if (i + more > end) return false;
    for (let k = 0; k < more; k++, lo = 0x80, hi = 0xbf) {
      const next = b[i++]!;
      if (next < lo || next > hi) return false;
    }
  }
  return true;
}

function bin(s: State, length: number): Uint8Array {
  need(s, length);
  charge(s, BIN_WEIGHT - 1); // its container already charged 1
  const out = new Uint8Array(length);
  out.set(s.bytes.subarray(s.pos, s.pos + length));
  s.pos += length;
  return out;
}

function charge(s: State, items: number): void {
  s.items -= items;
  if (s.items < 0) fail(`more than ${s.limit} items (values count 1, map keys 1, maps and arrays ${CONTAINER_WEIGHT}, bins ${BIN_WEIGHT})`);
}

/**
 * Checks a container's declared count and charges it to the budget before
 * anything is allocated: its own extra weight, plus one item per element (or
 * per key and per value). Each entry also needs at least one byte per item, so
 * impossible counts are refused first.
 */
function container(s: State, count: number, itemsPerEntry: number): void {
  if (count * itemsPerEntry > s.bytes.length - s.pos) fail('container longer than the body');
  charge(s, CONTAINER_WEIGHT - 1 + count * itemsPerEntry);
}

function setKey(target: Record<string, unknown>, key: string, value: unknown): void {
  if (Object.hasOwn(target, key)) fail(`duplicate map key ${JSON.stringify(key.slice(0, 40))}`);
  // defineProperty only for "__proto__" (so it is data, not a prototype change):
  // on every key it would turn the object into a slow dictionary.
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function readKey(s: State): string {
  const b = u8(s);
  if (b >= 0xa0 && b <= 0xbf) return str(s, b & 0x1f);
  if (b === 0xd9) return str(s, u8(s));
  if (b === 0xda) return str(s, u16(s));
  if (b === 0xdb) return str(s, u32(s));
  return fail('map key is not a str');
}

function map(s: State, count: number, depth: number): Record<string, unknown> {
  if (depth > MAX_NESTING) fail(`nested deeper than ${MAX_NESTING}`);
  container(s, count, 2);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const key = readKey(s);
    setKey(out, key, value(s, depth));
  }
  return out;
}

function array(s: State, count: number, depth: number): unknown[] {
  if (depth > MAX_NESTING) fail(`nested deeper than ${MAX_NESTING}`);
  container(s, count, 1);
  const out = new Array<unknown>(count);
  // Start in V8's generic elements kind: an array that moves from small ints to
  // doubles to objects would be copied at each step (garbage an attacker picks).
  if (count > 0) out[0] = null;
  for (let i = 0; i < count; i++) out[i] = value(s, depth);
  return out;
}

/** `depth` is the nesting level of the container holding this value. */
function value(s: State, depth: number): unknown {
  const b = u8(s);
  s.kind = 'other';
  if (b <= 0x7f) {
    s.kind = 'int';
    return b;
  }
  if (b >= 0xe0) {
    s.kind = 'int';
    return b - 0x100;
  }
  if (b <= 0x8f) return map(s, b & 0x0f, depth + 1);
  if (b <= 0x9f) return array(s, b & 0x0f, depth + 1);
  if (b <= 0xbf) return str(s, b & 0x1f);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return bin(s, u8(s));
    case 0xc5:
      return bin(s, u16(s));
    case 0xc6:
      return bin(s, u32(s));
    case 0xca: {
      need(s, 4);
      const v = s.view.getFloat32(s.pos);
      s.pos += 4;
      s.kind = 'float';
      return v;
    }
    case 0xcb: {
      need(s, 8);
      const v = s.view.getFloat64(s.pos);
      s.pos += 8;
      s.kind = 'float';
      return v;
    }
    case 0xcc:
      s.kind = 'int';
      return u8(s);
    case 0xcd:
      s.kind = 'int';
      return u16(s);
    case 0xce:
      s.kind = 'int';
      return u32(s);
    case 0xcf: {
      const v = int64(s, false);
      s.kind = 'int';
      return v;
    }
    case 0xd0: {
      const v = (u8(s) << 24) >> 24;
      s.kind = 'int';
      return v;
    }
    case 0xd1: {
      const v = (u16(s) << 16) >> 16;
      s.kind = 'int';
      return v;
    }
    case 0xd2: {
      const v = u32(s) | 0;
      s.kind = 'int';
      return v;
    }
    case 0xd3: {
      const v = int64(s, true);
      s.kind = 'int';
      return v;
    }
    case 0xd9:
      return str(s, u8(s));
    case 0xda:
      return str(s, u16(s));
    case 0xdb:
      return str(s, u32(s));
    case 0xdc:
      return array(s, u16(s), depth + 1);
    case 0xdd:
      return array(s, u32(s), depth + 1);
    case 0xde:
      return map(s, u16(s), depth + 1);
    case 0xdf:
      return map(s, u32(s), depth + 1);
    case 0xc1:
      return fail('byte 0xc1 is never used in MessagePack');
    default:
      return fail(`ext type (0x${b.toString(16)}) is not allowed`); // 0xc7-0xc9, 0xd4-0xd8
  }
}

function state(bytes: Uint8Array, limit: number): State {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    bytes: buffer,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    pos: 0,
    kind: 'other',
    items: limit - 1,
    limit,
  }; // the outermost value is an item too
}

export interface DecodedBody {
  /** Top-level fields; values decoded strictly. */
  fields: Record<string, unknown>;
  /** Top-level keys whose value was encoded as a MessagePack int. */
  ints: Set<string>;
}

/** Decodes a frame body: exactly one map with str keys and nothing after it. Throws MsgpackError. */
export function decodeBody(bytes: Uint8Array, maxItems: number = MAX_BODY_ITEMS): DecodedBody {
  const s = state(bytes, maxItems);
  const b = u8(s);
  let count: number;
  if (b >= 0x80 && b <= 0x8f) count = b & 0x0f;
  else if (b === 0xde) count = u16(s);
  else if (b === 0xdf) count = u32(s);
  else fail('body is not a map');
  container(s, count, 2);
  const fields: Record<string, unknown> = {};
  const ints = new Set<string>();
  for (let i = 0; i < count; i++) {
    const key = readKey(s);
    const v = value(s, 1);
    setKey(fields, key, v);
    if (s.kind === 'int' && typeof v !== 'object') ints.add(key);
  }
  if (s.pos !== bytes.length) fail(`${bytes.length - s.pos} bytes after the body map`);
  return { fields, ints };
}

/** Decodes one standalone MessagePack value under the same rules (for payloads carried outside frames). */
export function decodeStrict(bytes: Uint8Array, maxItems: number = MAX_BODY_ITEMS): unknown {
  const s = state(bytes, maxItems);
  const out = value(s, 0);
  if (s.pos !== bytes.length) fail(`${bytes.length - s.pos} bytes after the value`);
  return out;
}
