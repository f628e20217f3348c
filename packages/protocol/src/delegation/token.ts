/**
 * Capability token encoding (docs/delegation.md §2, §4): a fixed binary layout,
 * one encoding per token, signed with a domain apart from frames.
 *
 *   token   = payload || signature
 *   payload = version(1) || issuer(32) || audience(32) || parent(32) || nonce(16)
 *             || not-before(8) || expiry(8) || depth(1) || count(1)
 *             || count x ( length(1) || pattern )
 *   signature = Ed25519(issuer seed, "trustmesh/cap/v1\n" || payload)
 *   hash      = SHA-256("trustmesh/cap-hash/v1\n" || token)
 */
import { createHash } from 'node:crypto';
import { didFromPublicKey } from '../identity/did.ts';
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from '../identity/ed25519.ts';
import { BoundedCache } from '../util/bounded-cache.ts';
import { byteKey } from '../util/bytes.ts';
import { MAX_PATTERN_LENGTH, MAX_SCOPE_PATTERNS, tryParsePattern, type Pattern } from './pattern.ts';

export const TOKEN_VERSION = 0x01;
/** Prefix of the signing input: differs from the frame prefix "trustmesh/v1\n" at byte 10. */
export const TOKEN_SIGNING_DOMAIN = 'trustmesh/cap/v1\n';
/** Prefix of the token hash input. */
export const TOKEN_HASH_DOMAIN = 'trustmesh/cap-hash/v1\n';
export const NONCE_LENGTH = 16;
export const HASH_LENGTH = 32;
/** Largest time value a token carries: 2^53 - 1 ms, so every language reads it exactly. */
export const MAX_TIME = Number.MAX_SAFE_INTEGER;
export const MAX_DEPTH = 255;

// Offsets of the fixed part.
const OFF_ISSUER = 1;
const OFF_AUDIENCE = OFF_ISSUER + PUBLIC_KEY_LENGTH; // 33
const OFF_PARENT = OFF_AUDIENCE + PUBLIC_KEY_LENGTH; // 65
const OFF_NONCE = OFF_PARENT + HASH_LENGTH; // 97
const OFF_NOT_BEFORE = OFF_NONCE + NONCE_LENGTH; // 113
const OFF_EXPIRY = OFF_NOT_BEFORE + 8; // 121
const OFF_DEPTH = OFF_EXPIRY + 8; // 129
const OFF_COUNT = OFF_DEPTH + 1; // 130
/** Length of the fixed part of the payload, before the patterns. */
export const FIXED_LENGTH = OFF_COUNT + 1; // 131
/** Shortest token: one pattern of 3 bytes (`a:b`). */
export const MIN_TOKEN_BYTES = FIXED_LENGTH + 1 + 3 + SIGNATURE_LENGTH;
/** Longest token: the most patterns, each of the longest length. */
export const MAX_TOKEN_BYTES = FIXED_LENGTH + MAX_SCOPE_PATTERNS * (1 + MAX_PATTERN_LENGTH) + SIGNATURE_LENGTH;

const SIGNING_PREFIX = Buffer.from(TOKEN_SIGNING_DOMAIN, 'ascii');
const HASH_PREFIX = Buffer.from(TOKEN_HASH_DOMAIN, 'ascii');
const ZERO_HASH = new Uint8Array(HASH_LENGTH);
// base58 costs about 3 us a key and a mesh has few keys: remember them (bounded, keys are attacker-chosen).
const dids = new BoundedCache<string>(4096);
const didOf = (publicKey: Uint8Array) => dids.getOrCreate(byteKey(publicKey), () => didFromPublicKey(publicKey));

/** A decoded token. `bytes` are the exact signed bytes it was decoded from. */
export interface CapabilityToken {
  readonly bytes: Uint8Array;
  /** SHA-256 over the hash domain and `bytes`: the parent reference and cache key. */
  readonly hash: Uint8Array;
  readonly issuer: string;
  readonly issuerKey: Uint8Array;
  readonly audience: string;
  readonly audienceKey: Uint8Array;
  /** Hash of the parent token; undefined for a root (encoded as 32 zero bytes). */
  readonly parent: Uint8Array | undefined;
  readonly nonce: Uint8Array;
  /** First ms the token is valid (inclusive). */
  readonly notBefore: number;
  /** First ms the token is no longer valid (exclusive). */
  readonly expiry: number;
  /** How many further delegations may follow this token. */
  readonly depth: number;
  readonly scope: readonly string[];
  readonly patterns: readonly Pattern[];
  readonly signature: Uint8Array;
}

/** The fields a token is encoded from. `parent` undefined means a root. */
export interface TokenFields {
  issuerKey: Uint8Array;
  audienceKey: Uint8Array;
  parent?: Uint8Array | undefined;
  nonce: Uint8Array;
  notBefore: number;
  expiry: number;
  depth: number;
  scope: readonly string[];
}

export function tokenHash(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(HASH_PREFIX).update(bytes).digest());
}

/** The bytes a token's signature covers: the domain prefix and the payload. */
export function tokenSigningInput(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNING_PREFIX.length + payload.length);
  out.set(SIGNING_PREFIX, 0);
  out.set(payload, SIGNING_PREFIX.length);
  return out;
}

/**
 * Encodes the payload as given, checking only what the layout itself needs
 * (lengths that fit their fields). Semantic rules are the caller's: the issuing
 * API checks them, the test forge deliberately does not.
 */
export function encodePayload(fields: TokenFields): Uint8Array {
  const scope = fields.scope.map((p) => Buffer.from(p, 'utf8'));
  const size = FIXED_LENGTH + scope.reduce((n, p) => n + 1 + p.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = TOKEN_VERSION;
  out.set(fixed(fields.issuerKey, PUBLIC_KEY_LENGTH, 'issuer key'), OFF_ISSUER);
  out.set(fixed(fields.audienceKey, PUBLIC_KEY_LENGTH, 'audience key'), OFF_AUDIENCE);
  out.set(fields.parent === undefined ? ZERO_HASH : fixed(fields.parent, HASH_LENGTH, 'parent hash'), OFF_PARENT);
  out.set(fixed(fields.nonce, NONCE_LENGTH, 'nonce'), OFF_NONCE);
  view.setBigUint64(OFF_NOT_BEFORE, BigInt(fields.notBefore));
  view.setBigUint64(OFF_EXPIRY, BigInt(fields.expiry));
  out[OFF_DEPTH] = fields.depth;
  out[OFF_COUNT] = scope.length;
  let pos = FIXED_LENGTH;
  for (const p of scope) {
    if (p.length > MAX_PATTERN_LENGTH) throw new RangeError('pattern longer than 255 bytes');
    out[pos++] = p.length;
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function fixed(bytes: Uint8Array, length: number, name: string): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) throw new RangeError(`${name} must be ${length} bytes`);
  return bytes;
}

export type DecodeResult = { ok: true; token: CapabilityToken } | { ok: false; detail: string };

/**
 * Decodes a token (docs/delegation.md §4.3). Never throws: anything but a
 * well-formed token gives `{ ok: false }`. Does not check the signature.
 */
export function decodeToken(bytes: unknown): DecodeResult {
  return decodeTokenWithHash(bytes, undefined);
}

/** {@link decodeToken} for a caller that has already hashed the bytes. */
export function decodeTokenWithHash(bytes: unknown, hash: Uint8Array | undefined): DecodeResult {
  if (!(bytes instanceof Uint8Array)) return { ok: false, detail: 'not a byte string' };
  if (bytes.length < MIN_TOKEN_BYTES) return { ok: false, detail: `shorter than ${MIN_TOKEN_BYTES} bytes` };
  if (bytes.length > MAX_TOKEN_BYTES) return { ok: false, detail: `longer than ${MAX_TOKEN_BYTES} bytes` };
  if (bytes[0] !== TOKEN_VERSION) return { ok: false, detail: `unknown version ${bytes[0]}` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const notBefore = view.getBigUint64(OFF_NOT_BEFORE);
  const expiry = view.getBigUint64(OFF_EXPIRY);
  if (notBefore > BigInt(MAX_TIME) || expiry > BigInt(MAX_TIME)) return { ok: false, detail: 'time beyond 2^53 - 1' };
  if (notBefore >= expiry) return { ok: false, detail: 'not-before is not earlier than expiry' };
  const count = bytes[OFF_COUNT]!;
  if (count < 1 || count > MAX_SCOPE_PATTERNS) return { ok: false, detail: `scope of ${count} patterns (1..${MAX_SCOPE_PATTERNS})` };
  const end = bytes.length - SIGNATURE_LENGTH;
  const scope: string[] = [];
  const patterns: Pattern[] = [];
  let pos = FIXED_LENGTH;
  for (let i = 0; i < count; i++) {
    if (pos >= end) return { ok: false, detail: 'scope runs into the signature' };
    const length = bytes[pos++]!;
    if (length === 0 || pos + length > end) return { ok: false, detail: `pattern ${i} has a bad length` };
    // The grammar is ASCII, so a latin1 read is exact and any non-ASCII byte fails the parse.
    const text = Buffer.from(bytes.buffer, bytes.byteOffset + pos, length).toString('latin1');
    const pattern = tryParsePattern(text);
    if (pattern === undefined) return { ok: false, detail: `pattern ${i} is not a capability pattern` };
    scope.push(text);
    patterns.push(pattern);
    pos += length;
  }
  if (pos !== end) return { ok: false, detail: 'bytes between the scope and the signature' };
  const copy = Uint8Array.from(bytes);
  const issuerKey = copy.slice(OFF_ISSUER, OFF_ISSUER + PUBLIC_KEY_LENGTH);
  const audienceKey = copy.slice(OFF_AUDIENCE, OFF_AUDIENCE + PUBLIC_KEY_LENGTH);
  const parent = copy.slice(OFF_PARENT, OFF_PARENT + HASH_LENGTH);
  return {
    ok: true,
    token: {
      bytes: copy,
      hash: hash ?? tokenHash(copy),
      issuer: didOf(issuerKey),
      issuerKey,
      audience: didOf(audienceKey),
      audienceKey,
      parent: parent.every((b) => b === 0) ? undefined : parent,
      nonce: copy.slice(OFF_NONCE, OFF_NONCE + NONCE_LENGTH),
      notBefore: Number(notBefore),
      expiry: Number(expiry),
      depth: copy[OFF_DEPTH]!,
      scope,
      patterns,
      signature: copy.slice(end),
    },
  };
}

/** The payload of a decoded token (the bytes before the signature). */
export function payloadOf(token: CapabilityToken): Uint8Array {
  return token.bytes.subarray(0, token.bytes.length - SIGNATURE_LENGTH);
}
