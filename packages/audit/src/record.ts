/**
 * The record and its hash (docs/audit.md §2). Pure: no I/O, no NATS.
 *
 *   body  = u8 kind || u64 position || u64 time_ms || u64 seq_first || u64 seq_last
 *           || u32 len || subject (UTF-8) || u32 len || verdict (ASCII) || u32 len || frame
 *   hash  = SHA-256("trustmesh/audit/v1\n" || prev_hash || body)
 *   genesis prev_hash = SHA-256("trustmesh/audit/v1/genesis\n" || mesh name)
 *
 * Integers are big-endian and unsigned. Every byte of subject and frame is inside
 * the hash, and so are the kind, position, time, capture sequence and verdict.
 */
import { createHash } from 'node:crypto';
import { invalid } from './errors.ts';

export const RECORD_DOMAIN = 'trustmesh/audit/v1\n';
export const GENESIS_DOMAIN = 'trustmesh/audit/v1/genesis\n';
export const HASH_LENGTH = 32;
/** Fixed part of a body: kind, four u64, three u32 lengths. */
export const FIXED_BODY_LENGTH = 1 + 8 * 4 + 4 * 3;

/**
 * Record kinds as they appear in the `kind` byte:
 * - `frame`: one captured message;
 * - `gap`: capture sequences seq_first..seq_last that the stream no longer had when the audit read it;
 * - `outage`: the NATS server the audit reads from was replaced (restart or failover). Messages
 *   published while no server ran were never captured and have no sequence, so no gap record can
 *   name them; this record says when it happened. seq_first = seq_last = the capture sequence
 *   covered so far; verdict `server_changed`; frame = a UTF-8 JSON note.
 */
export const RECORD_KINDS = { frame: 1, gap: 2, outage: 3 } as const;
export type RecordKind = keyof typeof RECORD_KINDS;

/** What stateless verification said of a frame: `ok` or a reject reason of docs/protocol.md §8. */
export type Verdict = string;

/** The fields a record is made of, before it is chained. */
export interface RecordFields {
  kind: RecordKind;
  /** 1 for the first record; each next record is one more. */
  position: number;
  /** When the capture stream stored the message (ms since the epoch); for a gap or outage, when it was found. */
  time: number;
  /** Capture stream sequence of the frame; for a gap, the first missing sequence; for an outage, the last one covered. */
  seqFirst: number;
  /** Equal to seqFirst for a frame and an outage; for a gap, the last missing sequence. */
  seqLast: number;
  /** The NATS subject the frame was published on ('' otherwise). */
  subject: string;
  /** Stateless verification of the frame: 'ok' or a reason code; '' for a gap, `server_changed` for an outage. */
  verdict: Verdict;
  /** The frame exactly as captured; empty for a gap; a JSON note for an outage. */
  frame: Uint8Array;
}

/** A chained record: its fields and its hash. */
export interface AuditRecord extends RecordFields {
  hash: Uint8Array;
}

const DOMAIN_BYTES = Buffer.from(RECORD_DOMAIN, 'latin1');
const KIND_BY_BYTE = new Map<number, RecordKind>(Object.entries(RECORD_KINDS).map(([k, v]) => [v, k as RecordKind]));
const MAX_U64_SAFE = Number.MAX_SAFE_INTEGER;

export function genesisHash(mesh: string): Uint8Array {
  if (typeof mesh !== 'string' || mesh.length === 0) throw invalid('mesh must be a non-empty string');
  return new Uint8Array(createHash('sha256').update(GENESIS_DOMAIN, 'latin1').update(mesh, 'utf8').digest());
}

function checkInt(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_U64_SAFE) throw invalid(`${name} must be a non-negative safe integer`);
}

/** The body bytes of a record (docs/audit.md §2). Throws only on misuse. */
export function encodeBody(fields: RecordFields): Buffer {
  const kind = RECORD_KINDS[fields.kind];
  if (kind === undefined) throw invalid(`kind must be one of ${Object.keys(RECORD_KINDS).join(', ')}`);
  checkInt('position', fields.position);
  if (fields.position < 1) throw invalid('position starts at 1');
  checkInt('time', fields.time);
  checkInt('seqFirst', fields.seqFirst);
  checkInt('seqLast', fields.seqLast);
  if (!(fields.frame instanceof Uint8Array)) throw invalid('frame must be a Uint8Array');
  const subject = Buffer.from(fields.subject, 'utf8');
  const verdict = Buffer.from(fields.verdict, 'utf8');
  const out = Buffer.allocUnsafe(FIXED_BODY_LENGTH + subject.length + verdict.length + fields.frame.length);
  let at = out.writeUInt8(kind, 0);
  at = writeU64(out, fields.position, at);
  at = writeU64(out, fields.time, at);
  at = writeU64(out, fields.seqFirst, at);
  at = writeU64(out, fields.seqLast, at);
  at = out.writeUInt32BE(subject.length, at);
  at += subject.copy(out, at);
  at = out.writeUInt32BE(verdict.length, at);
  at += verdict.copy(out, at);
  at = out.writeUInt32BE(fields.frame.length, at);
  out.set(fields.frame, at);
  return out;
}

function writeU64(buf: Buffer, value: number, at: number): number {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
  return at + 8;
}

function readU64(buf: Uint8Array, at: number): number {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const hi = view.readUInt32BE(at);
  const lo = view.readUInt32BE(at + 4);
  // Values above 2^53 - 1 cannot come from this writer; they make the record malformed (NaN is caught by the caller).
  return hi > 0x1fffff ? Number.NaN : hi * 0x1_0000_0000 + lo;
}

/** SHA-256(domain || prev || body). */
export function hashBody(prev: Uint8Array, body: Uint8Array): Uint8Array {
  if (!(prev instanceof Uint8Array) || prev.length !== HASH_LENGTH) throw invalid(`prev hash must be ${HASH_LENGTH} bytes`);
  return new Uint8Array(createHash('sha256').update(DOMAIN_BYTES).update(prev).update(body).digest());
}

/** Chains `fields` onto `prev`: the record with its hash, and its body bytes. */
export function chainRecord(prev: Uint8Array, fields: RecordFields): { record: AuditRecord; body: Buffer } {
  const body = encodeBody(fields);
  return { record: { ...fields, hash: hashBody(prev, body) }, body };
}

/** Why a body could not be decoded. */
export type BodyProblem = 'bad_kind' | 'bad_length' | 'bad_integer' | 'bad_utf8';

/** Decodes body bytes; never throws on any input. */
export function decodeBody(body: Uint8Array): { ok: true; fields: RecordFields } | { ok: false; problem: BodyProblem } {
  if (body.length < FIXED_BODY_LENGTH) return { ok: false, problem: 'bad_length' };
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const kind = KIND_BY_BYTE.get(view[0]!);
  if (kind === undefined) return { ok: false, problem: 'bad_kind' };
  const position = readU64(view, 1);
  const time = readU64(view, 9);
  const seqFirst = readU64(view, 17);
  const seqLast = readU64(view, 25);
  if ([position, time, seqFirst, seqLast].some(Number.isNaN)) return { ok: false, problem: 'bad_integer' };
  let at = 33;
  const field = (): Uint8Array | undefined => {
    if (at + 4 > view.length) return undefined;
    const n = view.readUInt32BE(at);
    if (at + 4 + n > view.length) return undefined;
    const bytes = view.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return bytes;
  };
  const subject = field();
  const verdict = field();
  const frame = field();
  if (subject === undefined || verdict === undefined || frame === undefined || at !== view.length)
    return { ok: false, problem: 'bad_length' };
  const text = (b: Uint8Array): string | undefined => {
    try {
      return UTF8.decode(b);
    } catch {
      return undefined;
    }
  };
  const subjectText = text(subject);
  const verdictText = text(verdict);
  if (subjectText === undefined || verdictText === undefined) return { ok: false, problem: 'bad_utf8' };
  return { ok: true, fields: { kind, position, time, seqFirst, seqLast, subject: subjectText, verdict: verdictText, frame } };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Largest body a reader accepts: a 64 MiB frame plus room for subject and verdict. */
export const MAX_BODY_LENGTH = 64 * 1024 * 1024 + 1024 * 1024;

/** Stored form, the same in the file and the JetStream store: u32 body length || body || hash. */
export function encodeStored(body: Uint8Array, hash: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length + HASH_LENGTH);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  out.set(hash, 4 + body.length);
  return out;
}

/** One unit of stored bytes: a complete record, not enough bytes yet, or a length that no writer produces. */
export type StoredUnit =
  | { status: 'record'; body: Uint8Array; hash: Uint8Array; next: number }
  | { status: 'incomplete'; need: number }
  | { status: 'malformed'; detail: string };

/** Reads the stored unit at `at` of `buf`; never throws. */
export function readStored(buf: Uint8Array, at: number): StoredUnit {
  if (at + 4 > buf.length) return { status: 'incomplete', need: 4 };
  const length = ((buf[at]! << 24) >>> 0) + (buf[at + 1]! << 16) + (buf[at + 2]! << 8) + buf[at + 3]!;
  if (length < FIXED_BODY_LENGTH || length > MAX_BODY_LENGTH) {
    return { status: 'malformed', detail: `record length ${length} is outside ${FIXED_BODY_LENGTH}..${MAX_BODY_LENGTH}` };
  }
  const end = at + 4 + length + HASH_LENGTH;
  if (end > buf.length) return { status: 'incomplete', need: 4 + length + HASH_LENGTH };
  return { status: 'record', body: buf.subarray(at + 4, at + 4 + length), hash: buf.subarray(at + 4 + length, end), next: end };
}
