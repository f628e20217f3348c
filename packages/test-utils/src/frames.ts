/**
 * Frame forging for attack tests: build bodies the sender code would never
 * produce, sign whatever bytes we like, and mutate captured frames.
 * Wire form: docs/protocol.md §3–4 (version || public key || signature || body).
 */
import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import { equalBytes, FRAME_VERSION, HEADER_LENGTH, ID_LENGTH, type AgentKey } from '@trustmesh/protocol';
import { sealFrame } from '@trustmesh/protocol/internal';

/** Standard MessagePack, as the protocol requires (no records, smallest map headers). */
export const wirePackr = new Packr({ useRecords: false, variableMapSize: true });

/** Body fields as an attacker writes them: anything goes. `iat` numbers go out as 64-bit integers. */
export type ForgedBody = Record<string, unknown>;

export function encodeBody(body: ForgedBody): Uint8Array {
  const wire: ForgedBody = { ...body };
  if (typeof wire.iat === 'number' && Number.isSafeInteger(wire.iat)) wire.iat = BigInt(wire.iat);
  return wirePackr.pack(wire);
}

/** version || signer.publicKey || Ed25519(signer, signingInput(body)) || body, through the protocol's one seal function. */
export function assembleFrame(signer: AgentKey, body: Uint8Array, version = FRAME_VERSION): Uint8Array {
  return new Uint8Array(sealFrame(signer, body, version));
}

/**
 * A well-formed body signed by `signer`; every field can be overridden (or
 * removed with `undefined`), so one field at a time can be made wrong.
 */
export function forgeFrame(signer: AgentKey, fields: ForgedBody & { sub: string }, version = FRAME_VERSION): Uint8Array {
  const body: ForgedBody = {
    v: FRAME_VERSION,
    id: randomBytes(ID_LENGTH),
    iss: signer.did,
    typ: 'echo',
    iat: Date.now(),
    data: 'forged',
    ...fields,
  };
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  return assembleFrame(signer, encodeBody(body), version);
}

/** A copy of `frame` with bit `bit` (0 = most significant bit of byte 0) inverted. */
export function flipBit(frame: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(frame);
  out[bit >> 3]! ^= 0x80 >> (bit & 7);
  return out;
}

/** Index of the first body byte: flipping bits from here on leaves header and signature intact. */
export const BODY_OFFSET = HEADER_LENGTH;

export type MutationKind = 'bitflip' | 'truncate' | 'extend' | 'insert' | 'overwrite' | 'random';
export const MUTATION_KINDS: readonly MutationKind[] = ['bitflip', 'truncate', 'extend', 'insert', 'overwrite', 'random'];

/**
 * One mutation of `frame`, always different from it: bit flips (1–8 distinct
 * bits), truncation, extension, byte insertion, a byte overwritten with
 * another value, or fresh random bytes (half of them with a valid version byte,
 * so they reach the signature check).
 */
export function mutateFrame(frame: Uint8Array, random: () => number, kind: MutationKind): Uint8Array {
  const int = (n: number) => Math.floor(random() * n);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  let out: Uint8Array;
  switch (kind) {
    case 'bitflip': {
      const bits = new Set<number>();
      const count = 1 + int(8);
      while (bits.size < count) bits.add(int(frame.length * 8));
      out = Uint8Array.from(frame);
      for (const bit of bits) out[bit >> 3]! ^= 0x80 >> (bit & 7);
      break;
    }
    case 'truncate':
      out = frame.slice(0, int(frame.length));
      break;
    case 'extend':
      out = concat(frame, bytes(1 + int(64)));
      break;
    case 'insert': {
      const at = int(frame.length + 1);
      out = concat(frame.subarray(0, at), bytes(1 + int(16)), frame.subarray(at));
      break;
    }
    case 'overwrite': {
      out = Uint8Array.from(frame);
      const at = int(frame.length);
      out[at] = (out[at]! + 1 + int(255)) & 0xff;
      break;
    }
    case 'random': {
      out = bytes(int(2 * frame.length));
      if (out.length > 0 && random() < 0.5) out[0] = FRAME_VERSION;
      break;
    }
  }
  if (equalBytes(out, frame)) throw new Error(`mutation '${kind}' left the frame unchanged`);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
