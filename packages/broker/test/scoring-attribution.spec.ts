import * as protocol from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import { type Attribution, attribute, BLAME, countUnattributed, createScorer, emptyTally, type TrustState } from '../src/index.ts';

const X = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
const Y = 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG';
const T0 = 1_699_999_200_000;
const open = { secure: false };
const secure = { secure: true };

describe('attribution - signer faults', () => {
  for (const reason of ['bad_frame', 'bad_version', 'issuer_mismatch', 'future']) {
    it(`attribution - ${reason} with a verified signature blames the signer (protocol_violation)`, () => {
      expect(attribute({ reason, signer: X, publisher: Y }, open)).toEqual({
        outcome: 'attributed',
        did: X,
        event: 'protocol_violation',
        basis: 'signer',
      });
    });
  }

  it('attribution - equivocation blames the signer', () => {
    expect(attribute({ reason: 'equivocation', signer: X }, open)).toMatchObject({ outcome: 'attributed', did: X, event: 'equivocation' });
  });

  it('attribution - a signer fault without a verified signature blames nobody', () => {
    expect(attribute({ reason: 'bad_frame', claimed: X }, secure)).toEqual({ outcome: 'unattributed', cause: 'bad_frame', claimed: X });
  });
});

describe('attribution - publisher faults', () => {
  it('attribution - a bad signature claiming X blames nobody in open mode', () => {
    expect(attribute({ reason: 'bad_signature', claimed: X, publisher: X }, open)).toEqual({
      outcome: 'unattributed',
      cause: 'bad_signature',
      claimed: X,
      publisher: X,
    });
  });

  it('attribution - in secure mode a bad signature blames the authenticated publisher, not the DID claimed', () => {
    expect(attribute({ reason: 'bad_signature', claimed: X, publisher: Y }, secure)).toEqual({
      outcome: 'attributed',
      did: Y,
      event: 'bad_signature_authenticated',
      basis: 'publisher',
    });
  });

  it("attribution - a replay of X's valid frame never blames X; in secure mode it blames who published it", () => {
    expect(attribute({ reason: 'replay', signer: X, publisher: Y }, open)).toMatchObject({ outcome: 'unattributed', cause: 'replay' });
    expect(attribute({ reason: 'replay', signer: X, publisher: Y }, secure)).toMatchObject({
      outcome: 'attributed',
      did: Y,
      event: 'replay_authenticated',
    });
  });

  for (const reason of ['subject_mismatch', 'audience_mismatch', 'stale', 'unsolicited']) {
    it(`attribution - ${reason} names only the publisher and blames nobody, even in secure mode`, () => {
      const result = attribute({ reason, signer: X, publisher: Y }, secure);
      expect(result).toEqual({ outcome: 'unattributed', cause: reason, publisher: Y });
    });
  }

  for (const reason of ['too_large', 'overloaded', 'killed', 'untrusted', 'policy', 'a_code_from_the_future']) {
    it(`attribution - ${reason} blames nobody`, () => {
      expect(attribute({ reason, signer: X, publisher: X }, secure).outcome).toBe('unattributed');
    });
  }
});

describe('attribution - unattributed is an outcome of its own', () => {
  it("attribution - a flood of forgeries and replays claiming X leaves X's score unchanged and is counted", () => {
    const scorer = createScorer();
    const states = new Map<string, TrustState>([[X, scorer.newState(X, T0)]]);
    let tally = emptyTally(T0);
    // What a broker does with each checked report.
    const handle = (attribution: Attribution, now: number) => {
      if (attribution.outcome === 'unattributed') {
        tally = countUnattributed(tally, attribution);
        return;
      }
      const state = states.get(attribution.did) ?? scorer.newState(attribution.did, now);
      states.set(attribution.did, scorer.applyEvidence(state, attribution.event, now).state);
    };
    const before = states.get(X);
    for (let i = 0; i < 5000; i++) {
      handle(attribute({ reason: 'bad_signature', claimed: X, publisher: X }, open), T0 + i);
      handle(attribute({ reason: 'replay', signer: X, publisher: X }, open), T0 + i);
    }
    expect(states.get(X)).toBe(before);
    expect(states.size).toBe(1);
    expect(tally.total).toBe(10_000);
    expect(tally.causes).toEqual({ bad_signature: 5000, replay: 5000 });
  });

  it('attribution - unknown causes share one counter, so the tally stays bounded', () => {
    let tally = emptyTally(T0);
    for (let i = 0; i < 1000; i++) {
      const a = attribute({ reason: `made_up_${i}` }, open);
      if (a.outcome === 'unattributed') tally = countUnattributed(tally, a);
    }
    expect(tally.causes).toEqual({ other: 1000 });
  });

  it('attribution - odd input never throws', () => {
    expect(attribute({ reason: '__proto__' }, open).outcome).toBe('unattributed');
    expect(attribute({ reason: 42 as never, signer: 7 as never }, open)).toEqual({ outcome: 'unattributed', cause: 'unknown' });
  });
});

describe('attribution - agrees with the protocol', () => {
  it("attribution - every protocol reject code has a blame entry, and the signer is blamed exactly where the protocol's blame rule says", () => {
    const codes = Object.keys(protocol.REJECT_REASONS);
    expect(codes.length).toBeGreaterThan(0);
    // blameFor(reason, signatureVerified) is the protocol package's statement of the rule (docs/protocol.md §8.1).
    const blameFor = (protocol as Record<string, unknown>).blameFor as ((reason: string, verified: boolean) => string) | undefined;
    for (const code of codes) {
      expect(Object.hasOwn(BLAME, code), code).toBe(true);
      const ours = attribute({ reason: code, signer: X, publisher: Y }, open);
      const blamesSigner = ours.outcome === 'attributed' && ours.basis === 'signer';
      if (blameFor) expect(blamesSigner, code).toBe(blameFor(code, true) === 'signer');
    }
  });
});
