import { randomFillSync } from 'node:crypto';
import { Packr } from 'msgpackr';
import { SignerCache, type Signer } from '../identity/signers.ts';
import { ed25519Backend, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, type Ed25519Backend } from '../identity/ed25519.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { RejectReason } from '../codes.ts';
import { decodeBody, MsgpackError, type DecodedBody } from './msgpack.ts';
import type { AgentKey } from '../identity/keys.ts';

/** Frame layout, docs/protocol.md §3: version(1) || public key(32) || signature(64) || body. */
export const FRAME_VERSION = 1;
export const HEADER_LENGTH = 1 + PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH;
/** Signing input is this prefix followed by the body bytes, exactly as sent. */
export const SIGNING_DOMAIN = 'trustmesh/v1\n';
export const ID_LENGTH = 16;
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
export const MAX_TYPE_LENGTH = 128;
export const MAX_SUBJECT_LENGTH = 256;

const DOMAIN_BYTES = Buffer.from(SIGNING_DOMAIN, 'utf8');

/** The signed body (docs/protocol.md §4). */
export interface FrameBody {
  v: 1;
  id: Uint8Array;
  iss: string;
  sub: string;
  aud?: string;
  typ: string;
  iat: number;
  cor?: Uint8Array;
  data: unknown;
}

/** What a sender chooses; the rest (v, id, iss, iat) is filled in unless given. */
export interface FrameInit {
  sub: string;
  typ: string;
  data?: unknown;
  aud?: string;
  cor?: Uint8Array;
  /** 16 bytes; random when omitted. Fixed only for test vectors. */
  id?: Uint8Array;
  /** ms since the Unix epoch; `Date.now()` when omitted. */
  iat?: number;
}

export interface SignedFrame {
  bytes: Uint8Array;
  body: FrameBody;
}

// Standard MessagePack only: no records, no undefined extension, smallest map headers.
const packr = new Packr({ useRecords: false, variableMapSize: true, encodeUndefinedAsNil: true });

// Frame ids come from a pooled CSPRNG buffer: one getrandom call per 256 ids, not per frame.
const idPool = Buffer.allocUnsafe(4096);
let idPoolOffset = idPool.length;
function freshId(): Uint8Array {
  if (idPoolOffset + ID_LENGTH > idPool.length) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  const id = Uint8Array.prototype.slice.call(idPool, idPoolOffset, idPoolOffset + ID_LENGTH);
  idPoolOffset += ID_LENGTH;
  return id;
}

/**
 * version || public key || Ed25519(signingInput(body)) || body: the only place
 * a frame is assembled. `body` is sent exactly as given, so tests can seal
 * bodies the sender code would never write (internal export).
 */
export function sealFrame(key: AgentKey, body: Uint8Array, version: number = FRAME_VERSION): Uint8Array {
  const signature = key.sign(signingInput(body));
  const bytes = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  bytes[0] = version;
  bytes.set(key.publicKey, 1);
  bytes.set(signature, 1 + PUBLIC_KEY_LENGTH);
  bytes.set(body, HEADER_LENGTH);
  return bytes;
}

export function signingInput(body: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(DOMAIN_BYTES.length + body.length);
  DOMAIN_BYTES.copy(out, 0);
  out.set(body, DOMAIN_BYTES.length);
  return out;
}

/** Encodes the body in the order of docs/protocol.md §4 and signs it. Throws only on misuse. */
export function signFrame(key: AgentKey, init: FrameInit): SignedFrame {
  if (!isText(init.sub, MAX_SUBJECT_LENGTH)) {
    throw new InvalidArgumentError(`sub must be a non-empty subject of at most ${MAX_SUBJECT_LENGTH} UTF-8 bytes`);
  }
  if (!isText(init.typ, MAX_TYPE_LENGTH)) {
    throw new InvalidArgumentError(`typ must be a non-empty string of at most ${MAX_TYPE_LENGTH} UTF-8 bytes`);
  }
  const id = init.id ?? freshId();
  if (!isBytes(id, ID_LENGTH)) throw new InvalidArgumentError(`id must be a Uint8Array of ${ID_LENGTH} bytes`);
  if (init.cor !== undefined && !isBytes(init.cor, ID_LENGTH))
    throw new InvalidArgumentError(`cor must be a Uint8Array of ${ID_LENGTH} bytes`);
  if (init.aud !== undefined && !isText(init.aud, 128)) throw new InvalidArgumentError('aud must be a DID string of 1..128 bytes');
  const iat = init.iat ?? Date.now();
  if (!Number.isSafeInteger(iat) || iat < 0) throw new InvalidArgumentError('iat must be a non-negative integer (ms)');

  const body: FrameBody = { v: FRAME_VERSION, id, iss: key.did, sub: init.sub, typ: init.typ, iat, data: init.data ?? null };
  // Wire order: v, id, iss, sub, aud?, typ, iat, cor?, data. iat goes out as a
  // 64-bit integer (msgpackr would write a float64 for a plain number > 2^32).
  const wire: Record<string, unknown> = { v: FRAME_VERSION, id, iss: key.did, sub: init.sub };
  if (init.aud !== undefined) wire.aud = body.aud = init.aud;
  wire.typ = init.typ;
  wire.iat = BigInt(iat);
  if (init.cor !== undefined) wire.cor = body.cor = init.cor;
  wire.data = body.data;

  const encoded = packr.pack(wire);
  // msgpackr happily writes Dates, Sets and non-str map keys as ext types or odd
  // keys; receivers refuse those (§4), so refuse them here, where the caller can react.
  // Scalars and bytes can only be written as standard types: no check needed.
  try {
    if (!isScalarOrBytes(body.data)) decodeBody(encoded);
  } catch (err) {
    throw new InvalidArgumentError(
      `data is not plain MessagePack (${(err as Error).message}); send plain objects, arrays, strings, numbers, booleans, null and Uint8Array`,
    );
  }
  const bytes = sealFrame(key, encoded);
  return { bytes, body };
}

/** null, a boolean, a number, a string or a Uint8Array: what msgpackr writes only as standard MessagePack. */
const isScalarOrBytes = (data: unknown): boolean =>
  data === null ||
  typeof data === 'boolean' ||
  typeof data === 'number' ||
  typeof data === 'string' ||
  (data instanceof Uint8Array && Object.getPrototypeOf(data) === Uint8Array.prototype);

/** A frame whose signature verified and whose body is well formed. */
export interface OpenedFrame extends FrameBody {
  /** The signer's public key from the frame header (a view into `raw`). */
  publicKey: Uint8Array;
  /** The frame exactly as received: a copy of its own, never a view into a transport buffer. */
  raw: Uint8Array;
}

/**
 * `signer` (the DID of the header key) is set once the signature has verified:
 * from then on the rejection is attributable to that key (docs/protocol.md §7).
 */
export type OpenResult = { ok: true; frame: OpenedFrame } | { ok: false; reason: RejectReason; detail: string; signer?: string };

export interface OpenOptions {
  maxFrameBytes?: number;
  /** Ed25519 implementation when no `signers` cache is given; default `node`. */
  backend?: Ed25519Backend;
  /** Memo of parsed signer keys and their DIDs; saves key parsing and a base58 encode per frame. */
  signers?: SignerCache;
}

/** A refusal of {@link open}. */
export type FrameRejection = Extract<OpenResult, { ok: false }>;

const reject = (reason: RejectReason, detail: string): FrameRejection => ({ ok: false, reason, detail });

const own = (o: object, k: string) => Object.hasOwn(o, k);
const isBytes = (v: unknown, n: number): v is Uint8Array => v instanceof Uint8Array && v.length === n;
/**
 * Length bounds count UTF-8 bytes (§4), as every implementation can. A UTF-16
 * unit is at most 3 UTF-8 bytes, so short strings skip the byte count.
 */
const isText = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max && (v.length * 3 <= max || Buffer.byteLength(v) <= max);

/**
 * Checks size, version and signature before a byte of the body is parsed, then
 * decodes the body and checks field types and that `iss` names the signing key.
 * Never throws on any input bytes: every failure is a result with a reason.
 * Subject, audience, time and replay are the verifier's job (verifier.ts).
 */
export function openFrame(frame: Uint8Array, options: OpenOptions = {}): OpenResult {
  const signers = options.signers ?? new SignerCache(options.backend ?? ed25519Backend('node'), 1);
  return open(frame, options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, signers).result;
}

/**
 * openFrame, also handing back the signer (once its signature verified) so the
 * verifier need not look it up again. With `expectedSender` (the agent id in the
 * arrival subject's last token), a header key of another agent is refused as
 * `subject_mismatch` before the signature is checked: a frame cannot be valid
 * there whatever its signature, and the check costs a map lookup, not a verify.
 */
export function open(
  frame: Uint8Array,
  max: number,
  signers: SignerCache,
  expectedSender?: string,
): { result: OpenResult; signer?: Signer } {
  const pre = openHeader(frame, max, signers, expectedSender);
  if (!pre.ok) return { result: pre };
  const signer = pre.signer;
  if (!verifyFrameSignature(frame, signer)) return { result: reject('bad_signature', 'signature does not verify') };
  return { result: checkBody(frame, frame.subarray(HEADER_LENGTH), signer.did), signer };
}

/**
 * The checks of {@link open} before the signature: type, size, version, and the
 * header key against the subject's sender. Returns the signer to verify with,
 * or the rejection. Split out so a verification pool can run the signature
 * check elsewhere and the rest here (internal export).
 */
export function openHeader(
  frame: Uint8Array,
  max: number,
  signers: Pick<SignerCache, 'get'>,
  expectedSender?: string,
): { ok: true; signer: Signer } | FrameRejection {
  if (!(frame instanceof Uint8Array)) return reject('bad_frame', 'frame is not bytes');
  if (frame.length > max) return reject('too_large', `${frame.length} bytes > limit ${max}`);
  if (frame.length < HEADER_LENGTH + 1) return reject('bad_frame', `${frame.length} bytes is shorter than header + body`);
  if (frame[0] !== FRAME_VERSION) return reject('bad_version', `version byte ${frame[0]}`);
  const signer = signers.get(frame.subarray(1, 1 + PUBLIC_KEY_LENGTH));
  if (expectedSender !== undefined && signer.agentId !== expectedSender) {
    return reject('subject_mismatch', 'the header key is not the sender the subject names');
  }
  return { ok: true, signer };
}

/** Ed25519 over the frame's signing input with the header signature; `frame` passed {@link openHeader}. */
export function verifyFrameSignature(frame: Uint8Array, signer: Signer): boolean {
  return signer.verify(verificationInput(frame.subarray(HEADER_LENGTH)), frame.subarray(1 + PUBLIC_KEY_LENGTH, HEADER_LENGTH));
}

/** Bodies up to this size are verified from one reused buffer instead of a fresh signing input per frame. */
const SCRATCH_MAX = 64 * 1024;
let scratch = Buffer.allocUnsafe(4096);
DOMAIN_BYTES.copy(scratch, 0);

/**
 * The signing input of `body` for a verify that does not keep it: small bodies
 * are written into one module-wide buffer (a view of it is returned, valid
 * until the next call), saving an allocation per frame on the receive path.
 */
function verificationInput(body: Uint8Array): Uint8Array {
  const length = DOMAIN_BYTES.length + body.length;
  if (length > SCRATCH_MAX) return signingInput(body);
  if (length > scratch.length) {
    scratch = Buffer.allocUnsafe(SCRATCH_MAX);
    DOMAIN_BYTES.copy(scratch, 0);
  }
  scratch.set(body, DOMAIN_BYTES.length);
  return scratch.subarray(0, length);
}

const refuseBody = (signer: string, reason: RejectReason, detail: string): OpenResult => ({ ok: false, reason, detail, signer });

export function checkBody(frame: Uint8Array, encoded: Uint8Array, signer: string): OpenResult {
  let decoded: DecodedBody;
  try {
    decoded = decodeBody(encoded);
  } catch (err) {
    return refuseBody(
      signer,
      'bad_frame',
      `body is not a well-formed MessagePack map: ${err instanceof MsgpackError ? err.message : 'undecodable'}`,
    );
  }
  const body = decoded.fields;
  if (body.v !== FRAME_VERSION || !decoded.ints.has('v')) {
    return refuseBody(
      signer,
      'bad_version',
      `body.v is ${typeof body.v === 'number' ? body.v : typeof body.v}, header says ${FRAME_VERSION}`,
    );
  }
  if (!isBytes(body.id, ID_LENGTH)) return refuseBody(signer, 'bad_frame', `id must be ${ID_LENGTH} bytes (bin)`);
  if (!isText(body.iss, 128)) return refuseBody(signer, 'bad_frame', 'iss must be a string of 1..128 UTF-8 bytes');
  if (!isText(body.sub, MAX_SUBJECT_LENGTH))
    return refuseBody(signer, 'bad_frame', `sub must be a string of 1..${MAX_SUBJECT_LENGTH} UTF-8 bytes`);
  if (own(body, 'aud') && !isText(body.aud, 128))
    return refuseBody(signer, 'bad_frame', 'aud must be a string of 1..128 UTF-8 bytes when present');
  if (!isText(body.typ, MAX_TYPE_LENGTH))
    return refuseBody(signer, 'bad_frame', `typ must be a string of 1..${MAX_TYPE_LENGTH} UTF-8 bytes`);
  if (typeof body.iat !== 'number' || !decoded.ints.has('iat') || body.iat < 0) {
    return refuseBody(signer, 'bad_frame', 'iat must be a non-negative integer (ms)');
  }
  if (own(body, 'cor') && !isBytes(body.cor, ID_LENGTH))
    return refuseBody(signer, 'bad_frame', `cor must be ${ID_LENGTH} bytes when present`);
  if (!own(body, 'data')) return refuseBody(signer, 'bad_frame', 'data is missing');

  if (body.iss !== signer) return refuseBody(signer, 'issuer_mismatch', 'iss is not the did:key of the signing key');

  // A fresh object with the known fields only: unknown keys are ignored (§4).
  // The bytes it exposes are a copy: `frame` may be a view into a transport's
  // read buffer, and holding a view would pin the whole buffer.
  const raw = Uint8Array.prototype.slice.call(frame) as Uint8Array;
  const opened: OpenedFrame = {
    v: FRAME_VERSION,
    id: body.id,
    iss: body.iss,
    sub: body.sub,
    typ: body.typ,
    iat: body.iat,
    data: body.data,
    publicKey: raw.subarray(1, 1 + PUBLIC_KEY_LENGTH),
    raw,
  };
  if (body.aud !== undefined) opened.aud = body.aud as string;
  if (body.cor !== undefined) opened.cor = body.cor as Uint8Array;
  return { ok: true, frame: opened };
}
