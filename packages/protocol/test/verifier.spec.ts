import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_WINDOW_MS,
  FRAME_VERSION,
  FrameVerifier,
  generateKey,
  HEADER_LENGTH,
  REJECT_REASONS,
  signFrame,
  signingInput,
  subjects,
  type AgentKey,
  type FrameInit,
  type RejectReason,
  type VerifierInit,
  type VerifyResult,
} from '../src/index.ts';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const NOW = 1_750_000_000_000;
const MESH = 'vf';

const alice = generateKey();
const bob = generateKey();
const carol = generateKey();
const A_TO_B = subjects.message(MESH, bob.agentId, alice.agentId);

const BACKENDS = ['node', 'noble'] as const;

/** Hand-signed frame with arbitrary body fields (signed correctly by `key`). */
function handSigned(key: AgentKey, body: Record<string, unknown>): Uint8Array {
  // iat as a MessagePack int (msgpackr would write a plain number above 2^32 as float64).
  const wire = typeof body.iat === 'number' ? { ...body, iat: BigInt(body.iat) } : body;
  const encoded = Buffer.from(packr.pack(wire));
  const frame = new Uint8Array(HEADER_LENGTH + encoded.length);
  frame[0] = FRAME_VERSION;
  frame.set(key.publicKey, 1);
  frame.set(key.sign(signingInput(encoded)), 33);
  frame.set(encoded, HEADER_LENGTH);
  return frame;
}

const frameOf = (key: AgentKey, init: Partial<FrameInit> = {}) =>
  signFrame(key, { sub: subjects.message(MESH, bob.agentId, key.agentId), typ: 'test', iat: NOW, data: { n: 1 }, ...init }).bytes;

/** Refusals made after verification, by the client or its extensions: no crafted frame makes the verifier produce them. */
const LOCAL_REASONS = ['unsolicited', 'overloaded', 'killed', 'untrusted', 'policy'] as const;
type LocalReason = (typeof LOCAL_REASONS)[number];

const reasonOf = (r: VerifyResult) => (r.ok ? 'ok' : r.reason);

function verifier(init: VerifierInit = {}): FrameVerifier {
  return new FrameVerifier({ now: () => NOW, self: bob.did, ...init });
}

describe('verifier accepts', () => {
  for (const backend of BACKENDS) {
    it(`verifier - a valid signFrame frame verifies with the ${backend} backend and the result carries the body`, () => {
      const id = randomBytes(16);
      const bytes = signFrame(alice, { sub: A_TO_B, typ: 'greet', data: { hi: 'bob' }, aud: bob.did, id, iat: NOW }).bytes;
      const r = verifier({ backend }).verify(bytes, { subject: A_TO_B });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.frame.iss).toBe(alice.did);
      expect(r.frame.sub).toBe(A_TO_B);
      expect(r.frame.aud).toBe(bob.did);
      expect(r.frame.typ).toBe('greet');
      expect(r.frame.iat).toBe(NOW);
      expect(r.frame.data).toEqual({ hi: 'bob' });
      expect(Buffer.from(r.frame.id).equals(id)).toBe(true);
      // A copy of the bytes, never a view into the caller's (transport's) buffer.
      expect(r.frame.raw).toEqual(bytes);
      expect(r.frame.raw.buffer).not.toBe(bytes.buffer);
    });
  }

  it('verifier - frames on every subject kind whose last token is the signer are accepted', () => {
    const v = verifier();
    for (const sub of [
      subjects.presence(MESH, alice.agentId),
      subjects.message(MESH, bob.agentId, alice.agentId),
      subjects.request(MESH, bob.agentId, alice.agentId),
      subjects.reply(MESH, bob.agentId, alice.agentId),
    ]) {
      expect(reasonOf(v.verify(signFrame(alice, { sub, typ: 't', iat: NOW }).bytes, { subject: sub })), sub).toBe('ok');
    }
  });

  it('verifier - defaults: 30 s window, real clock, no audience check without self', () => {
    const v = new FrameVerifier();
    expect(v.windowMs).toBe(DEFAULT_WINDOW_MS);
    expect(DEFAULT_WINDOW_MS).toBe(30_000);
    const bytes = signFrame(alice, { sub: A_TO_B, typ: 't', aud: carol.did }).bytes; // iat = Date.now()
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('ok');
  });
});

describe('verifier subject_mismatch', () => {
  it('verifier - a valid frame verified against another subject is subject_mismatch', () => {
    const bytes = frameOf(alice);
    for (const subject of [
      subjects.message(MESH, carol.agentId, alice.agentId), // re-routed to another recipient
      subjects.request(MESH, bob.agentId, alice.agentId), // another kind
      subjects.message('other', bob.agentId, alice.agentId), // another mesh
      A_TO_B + '.x',
      A_TO_B.slice(0, -1),
      '',
    ]) {
      expect(reasonOf(verifier().verify(bytes, { subject })), subject).toBe('subject_mismatch');
    }
    expect(reasonOf(verifier().verify(bytes, { subject: A_TO_B }))).toBe('ok');
  });

  it('verifier - sub equal to the arrival subject but naming another sender than the signer is subject_mismatch', () => {
    for (const sub of [
      subjects.message(MESH, bob.agentId, carol.agentId), // alice publishing "as" carol
      subjects.message(MESH, alice.agentId, bob.agentId), // from/to swapped
      subjects.presence(MESH, carol.agentId),
      `tm.${MESH}.msg.${bob.agentId}.x${alice.agentId}`,
      `tm.${MESH}.msg.${bob.agentId}.${alice.agentId}x`,
      `tm.${MESH}.msg.${alice.agentId}.${bob.agentId}`,
    ]) {
      const bytes = signFrame(alice, { sub, typ: 't', iat: NOW }).bytes;
      const r = verifier().verify(bytes, { subject: sub });
      expect(reasonOf(r), sub).toBe('subject_mismatch');
    }
  });
});

describe('verifier audience_mismatch', () => {
  it('verifier - a frame addressed to another agent is audience_mismatch', () => {
    const bytes = frameOf(alice, { aud: carol.did });
    expect(reasonOf(verifier({ self: bob.did }).verify(bytes, { subject: A_TO_B }))).toBe('audience_mismatch');
  });

  it('verifier - a frame addressed to self, or to nobody, is accepted', () => {
    expect(reasonOf(verifier({ self: bob.did }).verify(frameOf(alice, { aud: bob.did }), { subject: A_TO_B }))).toBe('ok');
    expect(reasonOf(verifier({ self: bob.did }).verify(frameOf(alice), { subject: A_TO_B }))).toBe('ok');
  });

  it('verifier - aud that merely resembles self (agent id, other case, suffix) is audience_mismatch', () => {
    for (const aud of [bob.agentId, bob.did.toUpperCase(), bob.did + '#key-1', bob.did + ' ']) {
      expect(reasonOf(verifier({ self: bob.did }).verify(frameOf(alice, { aud }), { subject: A_TO_B })), aud).toBe('audience_mismatch');
    }
  });
});

describe('verifier stale and future', () => {
  const W = 30_000;
  const at = (now: number, iat: number, init: VerifierInit = {}) =>
    reasonOf(new FrameVerifier({ now: () => now, ...init }).verify(frameOf(alice, { iat }), { subject: A_TO_B }));

  it('verifier - iat older than the window is stale, exactly at the edge is accepted', () => {
    expect(at(NOW, NOW - W)).toBe('ok');
    expect(at(NOW, NOW - W - 1)).toBe('stale');
    expect(at(NOW, NOW - 10 * W)).toBe('stale');
    expect(at(NOW, 0)).toBe('stale');
  });

  it('verifier - iat further ahead than the window is future, exactly at the edge is accepted', () => {
    expect(at(NOW, NOW + W)).toBe('ok');
    expect(at(NOW, NOW + W + 1)).toBe('future');
    expect(at(NOW, NOW + 10 * W)).toBe('future');
    expect(at(NOW, Number.MAX_SAFE_INTEGER)).toBe('future');
  });

  it('verifier - a configured windowMs moves both edges', () => {
    const init = { windowMs: 5_000 };
    expect(at(NOW, NOW - 5_000, init)).toBe('ok');
    expect(at(NOW, NOW - 5_001, init)).toBe('stale');
    expect(at(NOW, NOW + 5_000, init)).toBe('ok');
    expect(at(NOW, NOW + 5_001, init)).toBe('future');
  });

  it('verifier - the clock is read per call', () => {
    let now = NOW;
    const v = new FrameVerifier({ now: () => now });
    const bytes = frameOf(alice, { iat: NOW + 40_000 });
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('future');
    now = NOW + 20_000;
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('ok');
    now = NOW + 70_000;
    expect(reasonOf(v.verify(frameOf(alice, { iat: NOW + 40_000 }), { subject: A_TO_B }))).toBe('ok');
    now = NOW + 70_001;
    expect(reasonOf(v.verify(frameOf(alice, { iat: NOW + 40_000 }), { subject: A_TO_B }))).toBe('stale');
  });
});

describe('verifier replay', () => {
  it('verifier - the same bytes twice: the second is replay, and so is every later copy', () => {
    const v = verifier();
    const bytes = frameOf(alice);
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('ok');
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('replay');
    expect(reasonOf(v.verify(Uint8Array.from(bytes), { subject: A_TO_B }))).toBe('replay');
    // Each verifier remembers only what it accepted itself.
    expect(reasonOf(verifier().verify(bytes, { subject: A_TO_B }))).toBe('ok');
  });

  it('verifier - another frame from the same signer with the same id is equivocation (the signer is at fault); the same id from another signer is not', () => {
    const v = verifier();
    const id = randomBytes(16);
    expect(reasonOf(v.verify(frameOf(alice, { id, data: 'first' }), { subject: A_TO_B }))).toBe('ok');
    const second = v.verify(frameOf(alice, { id, data: 'second', iat: NOW - 1 }), { subject: A_TO_B });
    expect(reasonOf(second)).toBe('equivocation');
    expect(!second.ok && second.blame).toBe('signer');
    const fromCarol = frameOf(carol, { id });
    expect(reasonOf(v.verify(fromCarol, { subject: subjects.message(MESH, bob.agentId, carol.agentId) }))).toBe('ok');
    expect(reasonOf(v.verify(frameOf(alice, { data: 'third' }), { subject: A_TO_B }))).toBe('ok');
  });

  it('verifier - a frame rejected as stale is not remembered, so it is not later reported as replay', () => {
    let now = NOW + 31_000;
    const v = new FrameVerifier({ now: () => now });
    const bytes = frameOf(alice, { iat: NOW });
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('stale');
    now = NOW;
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('ok');
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('replay');
  });

  it('verifier - a frame rejected as future is not remembered either', () => {
    let now = NOW - 31_000;
    const v = new FrameVerifier({ now: () => now });
    const bytes = frameOf(alice, { iat: NOW });
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('future');
    now = NOW;
    expect(reasonOf(v.verify(bytes, { subject: A_TO_B }))).toBe('ok');
  });

  it('verifier - a forged or re-routed copy carrying a genuine id does not burn that id', () => {
    const v = verifier();
    const genuine = frameOf(alice);
    const forged = Uint8Array.from(genuine);
    forged[forged.length - 1]! ^= 1;
    expect(reasonOf(v.verify(forged, { subject: A_TO_B }))).toBe('bad_signature');
    expect(reasonOf(v.verify(genuine, { subject: subjects.message(MESH, carol.agentId, alice.agentId) }))).toBe('subject_mismatch');
    expect(reasonOf(verifier({ self: carol.did }).verify(frameOf(alice, { aud: bob.did }), { subject: A_TO_B }))).toBe('audience_mismatch');
    expect(reasonOf(v.verify(genuine, { subject: A_TO_B }))).toBe('ok');
    expect(v.replay.size).toBe(1);
  });

  it('verifier - when the replay memory is full, older frames are refused as stale rather than forgotten', () => {
    const v = verifier({ maxEntries: 2 });
    const first = frameOf(alice, { iat: NOW - 5_000 });
    expect(reasonOf(v.verify(first, { subject: A_TO_B }))).toBe('ok');
    expect(reasonOf(v.verify(frameOf(alice, { iat: NOW - 4_000 }), { subject: A_TO_B }))).toBe('ok');
    expect(reasonOf(v.verify(frameOf(alice, { iat: NOW }), { subject: A_TO_B }))).toBe('ok');
    expect(v.replay.size).toBeLessThanOrEqual(2);
    // `first` was evicted: its replay must still be refused.
    expect(reasonOf(v.verify(first, { subject: A_TO_B }))).toBe('stale');
    expect(reasonOf(v.verify(frameOf(alice, { iat: NOW - 5_000 }), { subject: A_TO_B }))).toBe('stale');
  });
});

describe('verifier reason coverage', () => {
  /** One crafted frame per reason, each passing every check before its own. */
  function cases(): Record<
    Exclude<RejectReason, LocalReason>,
    { frame: Uint8Array; subject?: string; init?: VerifierInit; before?: (v: FrameVerifier) => void }
  > {
    const good = frameOf(alice);
    const flipped = Uint8Array.from(good);
    flipped[HEADER_LENGTH + 3]! ^= 0x10;
    const v2 = Uint8Array.from(good);
    v2[0] = 2;
    const sharedId = randomBytes(16);
    return {
      too_large: { frame: good, init: { maxFrameBytes: good.length - 1 } },
      bad_frame: { frame: handSigned(alice, { v: 1, id: randomBytes(15), iss: alice.did, sub: A_TO_B, typ: 't', iat: NOW, data: null }) },
      bad_version: { frame: v2 },
      bad_signature: { frame: flipped },
      issuer_mismatch: {
        frame: handSigned(alice, { v: 1, id: randomBytes(16), iss: bob.did, sub: A_TO_B, typ: 't', iat: NOW, data: null }),
      },
      subject_mismatch: { frame: good, subject: subjects.message(MESH, carol.agentId, alice.agentId) },
      audience_mismatch: { frame: frameOf(alice, { aud: carol.did }) },
      stale: { frame: frameOf(alice, { iat: NOW - 30_001 }) },
      future: { frame: frameOf(alice, { iat: NOW + 30_001 }) },
      replay: { frame: good, before: (v) => expect(reasonOf(v.verify(good, { subject: A_TO_B }))).toBe('ok') },
      equivocation: {
        frame: frameOf(alice, { id: sharedId, data: 'two' }),
        before: (v) => expect(reasonOf(v.verify(frameOf(alice, { id: sharedId, data: 'one' }), { subject: A_TO_B }))).toBe('ok'),
      },
    };
  }

  it('verifier - every wire reject reason except the client-level unsolicited is produced by a crafted frame', () => {
    const table = cases();
    const expected = Object.keys(REJECT_REASONS)
      .filter((r) => !LOCAL_REASONS.includes(r as LocalReason))
      .sort();
    expect(Object.keys(table).sort()).toEqual(expected);
    for (const backend of BACKENDS) {
      for (const [reason, c] of Object.entries(table)) {
        const v = verifier({ backend, ...c.init });
        c.before?.(v);
        const r = v.verify(c.frame, { subject: c.subject ?? A_TO_B });
        expect(reasonOf(r), `${backend}: ${reason}`).toBe(reason);
        if (!r.ok) {
          expect(typeof r.detail).toBe('string');
          expect(r.detail.length).toBeGreaterThan(0);
        }
      }
    }
  });

  it('verifier - checks run in the documented order: size, version, sender key, signature, body, issuer, subject, audience, time, replay', () => {
    const good = frameOf(alice, { aud: carol.did, iat: NOW - 60_000 }); // audience and time both wrong
    const other = subjects.message(MESH, carol.agentId, alice.agentId);
    // too_large wins over bad_version.
    const v2 = Uint8Array.from(good);
    v2[0] = 2;
    expect(reasonOf(verifier({ maxFrameBytes: 100 }).verify(v2, { subject: A_TO_B }))).toBe('too_large');
    // bad_version wins over bad_signature.
    v2[HEADER_LENGTH]! ^= 1;
    expect(reasonOf(verifier().verify(v2, { subject: A_TO_B }))).toBe('bad_version');
    // A header key that is not the sender the subject names wins over bad_signature: no verify is spent on it.
    const badSignature = frameOf(alice);
    badSignature[40]! ^= 1;
    expect(reasonOf(verifier().verify(badSignature, { subject: subjects.message(MESH, bob.agentId, carol.agentId) }))).toBe(
      'subject_mismatch',
    );
    expect(reasonOf(verifier().verify(badSignature, { subject: A_TO_B }))).toBe('bad_signature');
    // bad_signature wins over a malformed body.
    const badBody = handSigned(alice, { v: 1, id: 'short', iss: bob.did, sub: A_TO_B, typ: 't', iat: NOW, data: null });
    badBody[HEADER_LENGTH + 1]! ^= 1;
    expect(reasonOf(verifier().verify(badBody, { subject: other }))).toBe('bad_signature');
    // bad_frame wins over issuer_mismatch.
    expect(
      reasonOf(
        verifier().verify(handSigned(alice, { v: 1, id: 'short', iss: bob.did, sub: A_TO_B, typ: 't', iat: NOW, data: null }), {
          subject: other,
        }),
      ),
    ).toBe('bad_frame');
    // issuer_mismatch wins over subject_mismatch.
    expect(
      reasonOf(
        verifier().verify(handSigned(alice, { v: 1, id: randomBytes(16), iss: bob.did, sub: A_TO_B, typ: 't', iat: NOW, data: null }), {
          subject: other,
        }),
      ),
    ).toBe('issuer_mismatch');
    // subject_mismatch wins over audience_mismatch and stale.
    expect(reasonOf(verifier().verify(good, { subject: other }))).toBe('subject_mismatch');
    // audience_mismatch wins over stale.
    expect(reasonOf(verifier().verify(good, { subject: A_TO_B }))).toBe('audience_mismatch');
    // stale wins over replay.
    let now = NOW;
    const v = new FrameVerifier({ now: () => now });
    const fresh = frameOf(alice, { iat: NOW });
    expect(reasonOf(v.verify(fresh, { subject: A_TO_B }))).toBe('ok');
    now = NOW + 30_001;
    expect(reasonOf(v.verify(fresh, { subject: A_TO_B }))).toBe('stale');
  });
});
