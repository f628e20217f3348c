/**
 * What the audit says of a frame: the protocol's stateless verification stage
 * (`StatelessVerifier`, docs/protocol.md §7: size, version, header key against
 * the subject's sender, signature, body, issuer, subject binding). Time,
 * audience and replay depend on a receiver's clock and memory, so the audit
 * leaves them out: a record's verdict is the same whenever and wherever it is
 * recomputed.
 */
import { type Ed25519Backend, SignerCache, type StatelessResult, StatelessVerifier } from '@trustmesh/protocol';

export const VERDICT_OK = 'ok';
/** The verdict of a frame the service recorded without verifying it (`verifyOnIngest: false`); verify judges it. */
export const VERDICT_UNCHECKED = 'unchecked';

const verdictOf = (result: StatelessResult): string => (result.ok ? VERDICT_OK : result.reason);

const verifier = new StatelessVerifier({ signers: new SignerCache(undefined, 4096) });

/** Verifies the frame in this thread, signature included. */
export function statelessVerdict(subject: string, frame: Uint8Array): string {
  return verdictOf(verifier.verify(frame, subject));
}

// The Ed25519 check ran elsewhere (a worker thread); the verifier takes its
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
const presetVerifier = new StatelessVerifier({ signers: new SignerCache(presetBackend, 4096) });

/** As {@link statelessVerdict}, with the signature's validity already known. */
export function verdictGivenSignature(subject: string, frame: Uint8Array, signatureValid: boolean): string {
  preset = signatureValid;
  try {
    return verdictOf(presetVerifier.verify(frame, subject));
  } finally {
    preset = false;
  }
}
