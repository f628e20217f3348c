import { prng } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import {
  blameFor,
  generateKey,
  REJECT_REASONS,
  type RejectReason,
  StatelessVerifier,
  signFrame,
  subjects,
  verifyStateless,
} from '../src/index.ts';
import { sealFrame } from '../src/internal.ts';

const alice = generateKey();
const bob = generateKey();
const SUB = subjects.request('st', bob.agentId, alice.agentId);

describe('stateless verification stage (docs/protocol.md §7 rules 1-7)', () => {
  it('stateless - a frame from long ago still verifies: no clock, no memory, the same answer every time', () => {
    const old = signFrame(alice, { sub: SUB, typ: 'audit-me', aud: bob.did, iat: 1_000, data: { n: 1 } }).bytes;
    const v = new StatelessVerifier();
    for (let i = 0; i < 3; i++) {
      const r = v.verify(old, SUB);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.route).toEqual({ mesh: 'st', kind: 'req', to: bob.agentId, from: alice.agentId });
      expect(r.signer.did).toBe(alice.did);
      expect(r.frame.iat).toBe(1_000);
    }
    expect(verifyStateless(old, SUB).ok).toBe(true);
  });

  it('stateless - each rejection says whom it blames: the signer only for what only the signer can make', () => {
    const v = new StatelessVerifier();
    const good = signFrame(alice, { sub: SUB, typ: 't', aud: bob.did }).bytes;
    const badSig = Uint8Array.from(good);
    badSig[50]! ^= 1;
    expect(v.verify(badSig, SUB)).toMatchObject({ ok: false, reason: 'bad_signature', blame: 'publisher' });
    expect(v.verify(badSig, SUB)).not.toHaveProperty('signedBy');
    // Re-routed: valid signature, wrong subject. The signer is named as signer, not blamed.
    const elsewhere = subjects.message('st', bob.agentId, alice.agentId);
    expect(v.verify(good, elsewhere)).toMatchObject({ ok: false, reason: 'subject_mismatch', blame: 'publisher', signedBy: alice.did });
    // Another sender's subject: refused before the signature is checked.
    expect(v.verify(good, subjects.request('st', bob.agentId, bob.agentId))).toMatchObject({
      reason: 'subject_mismatch',
      blame: 'publisher',
    });
    // A malformed body under a valid signature: only alice could have made it.
    const malformed = sealFrame(alice, Uint8Array.of(0x92, 0x01, 0xa1, 0x78));
    expect(v.verify(malformed, SUB)).toMatchObject({ ok: false, reason: 'bad_frame', blame: 'signer', signedBy: alice.did });
  });

  it('stateless - the blame table: signer only for bad body, bad version, issuer mismatch, future iat and equivocation past the signature; non-frames blame nobody', () => {
    const signerFaults = new Set<RejectReason>(['bad_frame', 'bad_version', 'issuer_mismatch', 'future', 'equivocation']);
    for (const reason of Object.keys(REJECT_REASONS) as RejectReason[]) {
      expect(blameFor(reason, false), reason).toBe(reason === 'bad_frame' || reason === 'bad_version' ? 'none' : 'publisher');
      expect(blameFor(reason, true), reason).toBe(signerFaults.has(reason) ? 'signer' : 'publisher');
    }
  });

  it('stateless - never throws: 5,000 random byte strings on random subjects, and non-string subjects', () => {
    const random = prng(0x5eed);
    const v = new StatelessVerifier();
    const subjectsPool = [SUB, 'tm', 'tm.st', 'tm..x.y', 'x.y.z.w', '', 'tm.st.req.a.b.c.d', 'tm.st.req.z6Mk.z6Mk'];
    for (let i = 0; i < 5000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 400) }, () => Math.floor(random() * 256));
      if (random() < 0.5 && bytes.length > 97) bytes.set(alice.publicKey, 1);
      if (random() < 0.5 && bytes.length > 0) bytes[0] = 1;
      const r = v.verify(bytes, subjectsPool[i % subjectsPool.length]!);
      expect(r.ok).toBe(false);
    }
    for (const subject of [undefined, null, 42, {}, 'tm.'.repeat(300)]) {
      expect(v.verify(signFrame(alice, { sub: SUB, typ: 't' }).bytes, subject as unknown as string).ok).toBe(false);
    }
  });
});
