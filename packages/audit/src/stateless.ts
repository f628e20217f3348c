/**
 * What the audit says of a frame: stateless verification (docs/protocol.md §7
 * rules 1–7: size, version, signature, body, issuer, subject). Time, audience
 * and replay depend on a receiver's clock and memory, so the audit leaves them
 * out: the verdict of a record is the same whenever and wherever it is recomputed.
 *
 * @trustmesh/protocol has no `verifyStateless` yet; this is the small local
 * stage the issue allows: `openFrame` plus the subject rule, as FrameVerifier does it.
 */
import { type Ed25519Backend, type OpenResult, openFrame, senderOfSubject, SignerCache } from '@trustmesh/protocol';

export const VERDICT_OK = 'ok';

function judge(opened: OpenResult, subject: string): string {
  if (!opened.ok) return opened.reason;
  const body = opened.frame;
  if (body.sub !== subject) return 'subject_mismatch';
  // iss equals the signer's canonical did:key here (openFrame checked it).
  if (senderOfSubject(subject) !== body.iss.slice('did:key:'.length)) return 'subject_mismatch';
  return VERDICT_OK;
}

const signers = new SignerCache(undefined, 4096);

/** Verifies the frame in this thread, signature included. */
export function statelessVerdict(subject: string, frame: Uint8Array): string {
  return judge(openFrame(frame, { signers }), subject);
}

// The Ed25519 check ran elsewhere (a worker thread); openFrame then takes its
// answer through this backend, so every other rule is the protocol's own code.
let preset = false;
const presetBackend: Ed25519Backend = {
  name: 'node',
  publicKeyFromSeed: () => {
    throw new Error('preset backend cannot derive keys');
  },
  sign: () => {
    throw new Error('preset backend cannot sign');
  },
  verify: () => preset,
  prepare: () => () => preset,
};
const presetSigners = new SignerCache(presetBackend, 4096);

/** As {@link statelessVerdict}, with the signature's validity already known. */
export function verdictGivenSignature(subject: string, frame: Uint8Array, signatureValid: boolean): string {
  preset = signatureValid;
  try {
    return judge(openFrame(frame, { signers: presetSigners }), subject);
  } finally {
    preset = false;
  }
}
