/**
 * Tokens a correct issuer never produces, for tests and test vectors: any
 * scope, times, depth or parent, signed by whichever key the caller names
 * (or with a signature it supplies). Not part of the public API.
 */
import type { AgentKey } from '../identity/keys.ts';
import { type TokenFields, encodePayload, tokenSigningInput } from './token.ts';

export interface ForgeOptions {
  /** Use these 64 bytes instead of signing. */
  signature?: Uint8Array;
  /** Called on the payload before it is signed (to break the layout itself). */
  editPayload?: (payload: Uint8Array) => Uint8Array;
}

/** Encodes `fields` as they are and signs the result with `signer`. No rule is checked. */
export function forgeToken(signer: AgentKey, fields: TokenFields, options: ForgeOptions = {}): Uint8Array {
  let payload = encodePayload(fields);
  if (options.editPayload !== undefined) payload = options.editPayload(payload);
  const signature = options.signature ?? signer.sign(tokenSigningInput(payload));
  const out = new Uint8Array(payload.length + signature.length);
  out.set(payload, 0);
  out.set(signature, payload.length);
  return out;
}

/** A copy of `bytes` with one bit flipped. */
export function flipBit(bytes: Uint8Array, offset: number, bit = 0): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[offset]! ^= 1 << bit;
  return out;
}
