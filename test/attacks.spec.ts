/**
 * Attacks on a live agent through a real nats-server, in open and in secure mode.
 * The attacker ("mallory") is a raw NATS connection with a key of its own: it can
 * sign anything with its own key, but not with alice's. In open mode it can publish
 * any bytes on any subject; in secure mode it is an admitted agent, and the server
 * lets it publish only on its own subjects (test-utils `attacks.ts`).
 *
 * Each attack asserts: the agent's stats().rejected counter for exactly that
 * reason went up (and nothing else did), a 'rejected' event with that reason
 * and subject fired, no handler ran, and the agent still serves a genuine request;
 * in secure mode, a frame on another agent's subject is refused by the server
 * instead and never reaches the agent (`expectRejected`).
 */
import { randomBytes } from 'node:crypto';
import { MESSAGE_TYPES, type RejectionEvent } from '@trustmesh/client';
import {
  agentIdFromPublicKey,
  FRAME_VERSION,
  generateKey,
  HEADER_LENGTH,
  ID_LENGTH,
  isRejectReason,
  openFrame,
  REJECT_REASONS,
  signFrame,
  signingInput,
  subjects,
  type AgentKey,
  type RejectReason,
} from '@trustmesh/protocol';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  assembleFrame,
  BODY_OFFSET,
  concat,
  encodeBody,
  flipBit,
  forgeFrame,
  MUTATION_KINDS,
  mutateFrame,
  prng,
  wirePackr,
} from '@trustmesh/test-utils';
import { uniqueMesh } from '@trustmesh/test-utils';
import { capture, type CapturedMessage } from '@trustmesh/test-utils';
import { sleep, waitFor } from '@trustmesh/test-utils';
import {
  attackFixture,
  captureAliceToBob,
  expectRejected,
  expectStillServes,
  mayPublish,
  msgSubject,
  scene,
  type Scene,
} from '@trustmesh/test-utils';

/** A mallory-signed frame of exactly `size` bytes (the padding is in `data`). */
function frameOfSize(signer: AgentKey, sub: string, aud: string, size: number): Uint8Array {
  const pad = 300; // keeps the str16 header (3 bytes) whatever the final length
  const base = forgeFrame(signer, { sub, aud, data: 'x'.repeat(pad) }).length;
  const frame = forgeFrame(signer, { sub, aud, data: 'x'.repeat(pad + size - base) });
  expect(frame.length).toBe(size);
  return frame;
}

/** A valid frame mallory sends bob on her own `subject` (message or request), as captured on the wire once bob handled it. */
async function mallorySendsBob(s: Scene, subject: string, data: unknown): Promise<CapturedMessage> {
  const handled = s.bobCalls.length;
  s.attacker.publish(subject, forgeFrame(s.mallory, { sub: subject, aud: s.bob.did, data }));
  const captured = await s.wire.next((m) => m.subject === subject);
  await waitFor(() => s.bobCalls.length === handled + 1, "bob to handle mallory's valid frame");
  return captured;
}

describe.each(['open', 'secure'] as const)('attacks in %s mode', (mode) => {
  const fx = attackFixture(mode);
  let s: Scene;

  describe('on bob', () => {
    beforeEach(async () => {
      s = await scene(fx);
    });

    it('attacks - bad_frame: garbage bytes and an empty payload', async () => {
      const subject = msgSubject(s, s.bob, s.mallory.agentId);
      const garbage = randomBytes(HEADER_LENGTH - 1);
      garbage[0] = FRAME_VERSION; // so it is the length, not the version, that fails
      await expectRejected(s, s.bob, 'bad_frame', [
        [subject, garbage],
        [subject, new Uint8Array(0)],
        [subject, Uint8Array.of(FRAME_VERSION)],
      ]);
      await expectStillServes(s);
    });

    it('attacks - bad_frame: a truncated frame', async () => {
      const { subject, data } = await captureAliceToBob(s);
      await expectRejected(s, s.bob, 'bad_frame', [
        [subject, data.subarray(0, 50)],
        [subject, data.subarray(0, HEADER_LENGTH)],
      ]);
      await expectStillServes(s);
    });

    it('attacks - bad_frame: a validly signed body that is not a well-formed MessagePack map', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      const good = encodeBody({
        v: 1,
        id: randomBytes(ID_LENGTH),
        iss: s.mallory.did,
        sub,
        aud: s.bob.did,
        typ: 'echo',
        iat: Date.now(),
        data: 'x',
      });
      const notAMap = Uint8Array.of(0xc1, ...randomBytes(40)); // 0xc1 is never used in MessagePack
      await expectRejected(s, s.bob, 'bad_frame', [
        [sub, assembleFrame(s.mallory, good.subarray(0, good.length - 5))], // truncated body, signed as is
        [sub, assembleFrame(s.mallory, notAMap)],
        [sub, assembleFrame(s.mallory, wirePackr.pack([1, 2, 3]))], // an array, not a map
        [sub, assembleFrame(s.mallory, concat(good, Uint8Array.of(0xc0)))], // trailing bytes after the map
      ]);
      await expectStillServes(s);
    });

    it('attacks - bad_frame: a validly signed body with wrong field types or missing fields', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      const m = s.mallory;
      await expectRejected(s, s.bob, 'bad_frame', [
        [sub, forgeFrame(m, { sub, id: randomBytes(8) })],
        [sub, forgeFrame(m, { sub, id: 'not bytes' })],
        [sub, forgeFrame(m, { sub, iat: '1700000000000' })],
        [sub, forgeFrame(m, { sub, iat: -5 })],
        [sub, forgeFrame(m, { sub, iat: 1.5 })],
        [sub, forgeFrame(m, { sub, typ: '' })],
        [sub, forgeFrame(m, { sub, typ: 'x'.repeat(129) })],
        [sub, forgeFrame(m, { sub, iss: 42 })],
        [sub, forgeFrame(m, { sub, aud: 7 })],
        [sub, forgeFrame(m, { sub, cor: randomBytes(3) })],
        [sub, forgeFrame(m, { sub, data: undefined })],
        [sub, forgeFrame(m, { sub, id: undefined })],
      ]);
      await expectStillServes(s);
    });

    it('attacks - bad_frame: a validly signed body with a duplicate key', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      const fields = encodeBody({ v: 1, id: randomBytes(ID_LENGTH), iss: s.mallory.did, sub, typ: 'echo', iat: Date.now(), data: 'first' });
      // Same 7 entries plus a second 'data': header 0x88 (8 entries) then the 7 encoded pairs and one more pair.
      expect(fields[0]).toBe(0x87);
      const duplicate = concat(Uint8Array.of(0x88), fields.subarray(1), wirePackr.pack('data'), wirePackr.pack('second'));
      await expectRejected(s, s.bob, 'bad_frame', [[sub, assembleFrame(s.mallory, duplicate)]]);
      await expectStillServes(s);
    });

    it('attacks - bad_version: an unknown version byte, and a body that claims another version', async () => {
      const { subject, data } = await captureAliceToBob(s);
      const version2 = Uint8Array.from(data);
      version2[0] = 2;
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      await expectRejected(s, s.bob, 'bad_version', [
        [subject, version2],
        [subject, Uint8Array.from(data, (b, i) => (i === 0 ? 0 : b))],
        [sub, forgeFrame(s.mallory, { sub, v: 2 })],
        [sub, forgeFrame(s.mallory, { sub }, 2)],
      ]);
      await expectStillServes(s);
    });

    it('attacks - bad_signature: a genuine frame with one flipped bit', async () => {
      const { subject, data } = await captureAliceToBob(s);
      await expectRejected(s, s.bob, 'bad_signature', [
        [subject, flipBit(data, data.length * 8 - 1)], // last bit of the body
        [subject, flipBit(data, BODY_OFFSET * 8 + 20)], // inside the first body bytes
        [subject, flipBit(data, (1 + 32) * 8 + 3)], // inside the signature
      ]);
      // A flipped key bit names another key than the subject's sender: refused before the signature check.
      await expectRejected(s, s.bob, 'subject_mismatch', [[subject, flipBit(data, 8 + 5)]]);
      await expectStillServes(s);
    });

    it("attacks - issuer_mismatch: a frame signed by mallory's key whose body claims to be alice", async () => {
      const sub = msgSubject(s, s.bob, s.alice.agentId);
      const body = encodeBody({
        v: 1,
        id: randomBytes(ID_LENGTH),
        iss: s.alice.did,
        sub,
        aud: s.bob.did,
        typ: 'echo',
        iat: Date.now(),
        data: 'i am alice',
      });
      const frame = concat(Uint8Array.of(FRAME_VERSION), s.mallory.publicKey, s.mallory.sign(signingInput(body)), body);
      expect(frame).toEqual(assembleFrame(s.mallory, body)); // the helper builds the same bytes
      // On alice's subject the header key is not the sender the subject names: refused before the signature check.
      await expectRejected(s, s.bob, 'subject_mismatch', [[sub, frame]]);
      const own = msgSubject(s, s.bob, s.mallory.agentId);
      await expectRejected(s, s.bob, 'issuer_mismatch', [
        [own, forgeFrame(s.mallory, { sub: own, iss: s.alice.did })],
        [own, forgeFrame(s.mallory, { sub: own, iss: 'did:key:not-a-key' })],
      ]);
      await expectStillServes(s);
    });

    it("attacks - subject_mismatch: alice's captured frame re-routed onto another subject", async () => {
      const { data } = await captureAliceToBob(s);
      const otherMesh = uniqueMesh();
      await expectRejected(s, s.bob, 'subject_mismatch', [
        [msgSubject(s, s.bob, s.mallory.agentId), data],
        [subjects.request(s.mesh, s.bob.agentId, s.alice.agentId), data], // same sender, another kind
        [subjects.reply(s.mesh, s.bob.agentId, s.alice.agentId), data],
      ]);
      // The same frame pushed into another mesh is refused there too.
      const intoOther = subjects.message(otherMesh, s.bob.agentId, s.alice.agentId);
      if (s.secure) {
        // mallory was admitted to this mesh only: the server refuses the publish.
        await expectRejected(s, s.bob, 'subject_mismatch', [[intoOther, data]]);
      } else {
        const elsewhere = await fx.join({ mesh: otherMesh, name: 'bob-elsewhere', key: s.bob.key });
        const events: RejectionEvent[] = [];
        elsewhere.on('rejected', (e) => events.push(e));
        s.attacker.publish(intoOther, data);
        await s.attacker.flush();
        await waitFor(() => elsewhere.stats().rejected.subject_mismatch === 1, 'the other mesh to refuse the frame');
        expect(events.map((e) => e.reason)).toEqual(['subject_mismatch']);
        expect(elsewhere.stats().accepted).toBe(1); // its own presence only
      }
      await expectStillServes(s);
    });

    it("attacks - subject_mismatch: a frame validly signed by mallory on alice's subject", async () => {
      const sub = msgSubject(s, s.bob, s.alice.agentId);
      await expectRejected(s, s.bob, 'subject_mismatch', [
        [sub, forgeFrame(s.mallory, { sub, aud: s.bob.did })],
        [
          subjects.request(s.mesh, s.bob.agentId, s.alice.agentId),
          forgeFrame(s.mallory, { sub: subjects.request(s.mesh, s.bob.agentId, s.alice.agentId) }),
        ],
      ]);
      await expectStillServes(s);
    });

    it("attacks - subject_mismatch: forged presence on alice's subject neither removes nor renames her", async () => {
      const sub = subjects.presence(s.mesh, s.alice.agentId);
      const leave = forgeFrame(s.mallory, {
        sub,
        typ: MESSAGE_TYPES.presence,
        data: { status: 'leave', name: 'alice', version: '0.0.0', capabilities: [] },
      });
      const rename = forgeFrame(s.mallory, {
        sub,
        typ: MESSAGE_TYPES.presence,
        data: { status: 'alive', name: 'evil', version: '6.6.6', capabilities: ['*'] },
      });
      await expectRejected(s, s.bob, 'subject_mismatch', [
        [sub, leave],
        [sub, rename],
      ]);
      expect(s.bob.peers()).toMatchObject([{ did: s.alice.did, name: 'alice' }]);
      await expectStillServes(s);
    });

    it('attacks - presence of the wrong shape from a valid key is not tracked; the right shape with unknown keys is', async () => {
      const sub = subjects.presence(s.mesh, s.mallory.agentId);
      const announce = (data: unknown) => s.attacker.publish(sub, forgeFrame(s.mallory, { sub, typ: MESSAGE_TYPES.presence, data }));
      const before = s.bob.stats();
      announce({ status: 'join', name: 'mallory', version: '1', capabilities: 'everything' });
      announce({ status: 'dancing', name: 'mallory', version: '1', capabilities: [] });
      announce({ status: 'join', name: 'm'.repeat(129), version: '1', capabilities: [] });
      announce({ status: 'join', name: 'mallory', version: '1', capabilities: [], lineage: 'not a map' });
      announce(null);
      s.attacker.publish(
        sub,
        forgeFrame(s.mallory, { sub, typ: 'echo', data: { status: 'join', name: 'mallory', version: '1', capabilities: [] } }),
      );
      await s.attacker.flush();
      await waitFor(() => s.bob.stats().received === before.received + 6, 'bob to receive the six announcements');
      expect(s.bob.peers().map((p) => p.name)).toEqual(['alice']);
      expect(s.bob.stats().sent).toBe(before.sent); // no 'alive' answer to a malformed join
      expect(s.bobCalls).toHaveLength(0);

      announce({ status: 'join', name: 'mallory', version: '1', capabilities: ['x'], mood: 'sneaky', lineage: { model: 'm', extra: 1 } });
      await waitFor(() => s.bob.peers().length === 2, 'bob to track mallory');
      expect(s.bob.peers().find((p) => p.did === s.mallory.did)).toMatchObject({
        name: 'mallory',
        version: '1',
        capabilities: ['x'],
        lineage: { model: 'm' },
      });
      await expectStillServes(s);
    });

    it('attacks - bad_frame: a well-formed presence announcement that carries an aud is refused, not tracked', async () => {
      const sub = subjects.presence(s.mesh, s.mallory.agentId);
      const data = { status: 'join', name: 'mallory', version: '1', capabilities: [] };
      await expectRejected(s, s.bob, 'bad_frame', [
        [sub, forgeFrame(s.mallory, { sub, typ: MESSAGE_TYPES.presence, aud: s.bob.did, data })],
      ]);
      expect(s.bob.peers().map((p) => p.name)).toEqual(['alice']);
      await expectStillServes(s);
    });

    it("attacks - subject_mismatch: a valid frame on bob's inbox under a kind that is not msg, req or rep", async () => {
      const sub = `tm.${s.mesh}.foo.${s.bob.agentId}.${s.mallory.agentId}`;
      await expectRejected(s, s.bob, 'subject_mismatch', [[sub, forgeFrame(s.mallory, { sub, aud: s.bob.did, typ: 'echo', data: 'hi' })]]);
      await expectStillServes(s);
    });

    it("attacks - audience_mismatch: a frame addressed to someone else arriving on bob's subject", async () => {
      const carol = generateKey();
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      const req = subjects.request(s.mesh, s.bob.agentId, s.mallory.agentId);
      await expectRejected(s, s.bob, 'audience_mismatch', [
        [sub, forgeFrame(s.mallory, { sub, aud: carol.did })],
        [req, forgeFrame(s.mallory, { sub: req, aud: s.alice.did })],
      ]);
      await expectStillServes(s);
    });

    it('attacks - stale: a frame signed 60 s in the past', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      await expectRejected(s, s.bob, 'stale', [[sub, forgeFrame(s.mallory, { sub, aud: s.bob.did, iat: Date.now() - 60_000 })]]);
      await expectStillServes(s);
    });

    it('attacks - future: a frame signed 60 s in the future', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      await expectRejected(s, s.bob, 'future', [[sub, forgeFrame(s.mallory, { sub, aud: s.bob.did, iat: Date.now() + 60_000 })]]);
      await expectStillServes(s);
    });

    it('attacks - a validly signed frame from an unknown key inside every limit is accepted (the controls are not vacuous)', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      const before = s.bobCalls.length;
      s.attacker.publish(sub, forgeFrame(s.mallory, { sub, aud: s.bob.did, data: 'hello from mallory' }));
      await waitFor(() => s.bobCalls.length === before + 1, 'bob to accept a valid frame');
      expect(s.bobCalls.at(-1)!.from).toBe(s.mallory.did);
      expect(s.bob.stats().rejectedTotal).toBe(0);
    });

    it('attacks - replay: a captured frame re-published is handled once', async () => {
      const { subject, data } = await captureAliceToBob(s, 'only once');
      expect(s.bobCalls.map((c) => c.frame.data)).toEqual(['only once']);
      await expectRejected(s, s.bob, 'replay', [[subject, data]]);
      expect(s.bob.stats().rejected.replay).toBe(mayPublish(s, subject) ? 1 : 0); // secure mode: refused by the server
      expect(s.bobCalls.map((c) => c.frame.data)).toEqual(['only once']);
      await expectStillServes(s);
    });

    it('attacks - replay: a captured request re-published is not answered twice', async () => {
      const subject = subjects.request(s.mesh, s.bob.agentId, s.alice.agentId);
      await expect(s.alice.request(s.bob.did, 'echo', 'once')).resolves.toBe('once');
      const captured = s.wire.messages.find((m) => m.subject === subject)!;
      expect(captured).toBeDefined();
      const aliceBefore = s.alice.stats();
      await expectRejected(s, s.bob, 'replay', [[subject, captured.data]]);
      expect(s.alice.stats().received).toBe(aliceBefore.received); // no second reply went out
      expect(s.bobCalls).toHaveLength(1);
      await expectStillServes(s);
    });

    it("attacks - a request's NATS reply subject is ignored: the answer goes to tm.<mesh>.rep, never to the reply subject", async () => {
      const inboxes = await capture(s.attacker, `${s.attackerInbox}.>`);
      const req = subjects.request(s.mesh, s.bob.agentId, s.mallory.agentId);
      const rep = subjects.reply(s.mesh, s.mallory.agentId, s.bob.agentId);
      s.attacker.publish(req, forgeFrame(s.mallory, { sub: req, aud: s.bob.did, data: 'ping' }), { reply: `${s.attackerInbox}.steal` });
      const answer = await s.wire.next((m) => m.subject === rep);
      const opened = openFrame(answer.data);
      expect(opened.ok && opened.frame.data).toBe('ping');
      await s.attacker.flush();
      await sleep(20);
      expect(inboxes.messages).toEqual([]);
      inboxes.stop();
    });

    it('attacks - blame: a rejection names the signer only when it proves the signer misbehaved (docs/protocol.md §8.1)', async () => {
      const own = msgSubject(s, s.bob, s.mallory.agentId);
      const events = s.rejectedAt.get(s.bob)!;
      const before = events.length;
      s.attacker.publish(own, forgeFrame(s.mallory, { sub: own, iss: s.alice.did, aud: s.bob.did })); // issuer_mismatch
      s.attacker.publish(own, forgeFrame(s.mallory, { sub: own, aud: s.bob.did, iat: Date.now() + 120_000 })); // future
      await s.attacker.flush();
      await waitFor(() => events.length === before + 2, 'two rejections');
      const fired = events.slice(before);
      expect(fired.map((e) => e.reason).sort()).toEqual(['future', 'issuer_mismatch']);
      for (const event of fired) {
        expect(event.blame).toBe('signer');
        expect(event.signer).toBe(s.mallory.did);
        expect(event.publisher).toBe(s.mallory.did);
        expect(event.publisherAuthenticated).toBe(s.secure);
        // The evidence a report carries: the frame itself, a copy.
        expect(event.evidence).toBeInstanceOf(Uint8Array);
        expect(agentIdFromPublicKey(event.evidence!.subarray(1, 33))).toBe(s.mallory.agentId);
      }
    });

    it("attacks - blame: 1,000 re-published copies of alice's 4 frames never name alice as at fault", async () => {
      const captured: CapturedMessage[] = [];
      for (let i = 0; i < 4; i++) captured.push(await captureAliceToBob(s));
      const events = s.rejectedAt.get(s.bob)!;
      const before = events.length;
      const elsewhere = [
        (c: CapturedMessage) => c.subject, // exact replay
        () => subjects.request(s.mesh, s.bob.agentId, s.alice.agentId), // another kind
        () => subjects.reply(s.mesh, s.bob.agentId, s.alice.agentId),
        () => msgSubject(s, s.bob, s.mallory.agentId), // another sender's subject
        () => subjects.message(s.mesh, s.alice.agentId, s.alice.agentId), // another recipient (nobody listens)
      ];
      let sent = 0;
      let published = 0;
      const deniedBefore = s.denied.length;
      for (let round = 0; round < 50; round++) {
        for (const c of captured) {
          for (const where of elsewhere) {
            const subject = where(c);
            s.attacker.publish(subject, c.data);
            sent++;
            if (mayPublish(s, subject)) published++;
          }
        }
      }
      await s.attacker.flush();
      expect(sent).toBe(1000);
      // Open mode: everything but the copies addressed to alice (nobody subscribes as alice on bob's side) reaches bob.
      // Secure mode: only the copies on mallory's own subject do; the server refuses the other 800.
      const reachBob = s.secure ? 200 : 800;
      expect(published).toBe(s.secure ? 200 : 1000);
      await waitFor(() => events.length - before === reachBob, 'bob to refuse every copy he receives');
      await waitFor(() => s.denied.length - deniedBefore === sent - published, 'the server to refuse every copy mallory may not publish');
      const fired = events.slice(before);
      expect(new Set(fired.map((e) => e.reason))).toEqual(new Set(s.secure ? ['subject_mismatch'] : ['replay', 'subject_mismatch']));
      for (const event of fired) {
        expect(event.blame).toBe('publisher');
        expect(event.signer).toBeUndefined();
        // Evidence travels only against someone: the signer (never here), or in secure mode the authenticated publisher.
        if (s.secure) expect(event.evidence).toBeInstanceOf(Uint8Array);
        else expect(event.evidence).toBeUndefined();
        if (s.secure) expect(event).toMatchObject({ publisher: s.mallory.did, publisherAuthenticated: true });
      }
      expect(s.bobCalls).toHaveLength(4);
    });
  });

  describe('on a small agent', () => {
    beforeEach(async () => {
      s = await scene(fx, { maxFrameBytes: 2048 });
    });

    it('attacks - too_large: a frame over maxFrameBytes is refused unread', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      await expectRejected(s, s.bob, 'too_large', [
        [sub, frameOfSize(s.mallory, sub, s.bob.did, 4096)],
        [sub, frameOfSize(s.mallory, sub, s.bob.did, 2049)],
        [sub, randomBytes(4096)], // refused for its size before anything else is looked at
      ]);
      await expectStillServes(s);
    });

    it('attacks - too_large: a frame of exactly maxFrameBytes is still accepted', async () => {
      const sub = msgSubject(s, s.bob, s.mallory.agentId);
      s.attacker.publish(sub, frameOfSize(s.mallory, sub, s.bob.did, 2048));
      await waitFor(() => s.bobCalls.length === 1, 'bob to accept the 2048-byte frame');
      expect(s.bob.stats().rejectedTotal).toBe(0);
    });
  });

  /**
   * alice asks bob a 'slow-echo' request that bob holds until release(); returns
   * the request's id (the cor a reply must carry) as captured on the wire.
   */
  async function holdRequest(s: Scene, text: string) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    s.bob.handle('slow-echo', async (data) => {
      await gate;
      return data;
    });
    const requestSubject = subjects.request(s.mesh, s.bob.agentId, s.alice.agentId);
    const outcome = s.alice.request(s.bob.did, 'slow-echo', text, { timeoutMs: 5_000 }).then(
      (v) => ({ value: v }),
      (err: unknown) => ({ err }),
    );
    const opened = openFrame((await s.wire.next((m) => m.subject === requestSubject)).data);
    if (!opened.ok) throw new Error(`captured request did not open: ${opened.reason}`);
    return { release, outcome, cor: opened.frame.id };
  }

  describe('on alice, waiting for replies', () => {
    beforeEach(async () => {
      s = await scene(fx);
    });

    it("attacks - unsolicited: a tm.reply with a random cor on alice's reply subject", async () => {
      const sub = subjects.reply(s.mesh, s.alice.agentId, s.mallory.agentId);
      const forged = forgeFrame(s.mallory, {
        sub,
        aud: s.alice.did,
        typ: MESSAGE_TYPES.reply,
        cor: randomBytes(ID_LENGTH),
        data: 'forged',
      });
      await expectRejected(s, s.alice, 'unsolicited', [[sub, forged]]);
      await expectStillServes(s, s.alice, s.bob);
      await expectStillServes(s);
    });

    it("attacks - unsolicited: mallory's reply to alice's real pending request does not answer it; bob's genuine reply does", async () => {
      const { release, outcome, cor } = await holdRequest(s, 'from bob');

      const own = subjects.reply(s.mesh, s.alice.agentId, s.mallory.agentId);
      const asBob = subjects.reply(s.mesh, s.alice.agentId, s.bob.agentId);
      await expectRejected(s, s.alice, 'unsolicited', [
        [own, forgeFrame(s.mallory, { sub: own, aud: s.alice.did, typ: MESSAGE_TYPES.reply, cor, data: 'forged' })],
        [
          own,
          forgeFrame(s.mallory, {
            sub: own,
            aud: s.alice.did,
            typ: MESSAGE_TYPES.error,
            cor,
            data: { code: 'handler_error', message: 'forged' },
          }),
        ],
      ]);
      await expectRejected(s, s.alice, 'subject_mismatch', [
        [asBob, forgeFrame(s.mallory, { sub: asBob, aud: s.alice.did, typ: MESSAGE_TYPES.reply, cor, data: 'forged' })],
      ]);
      expect(s.alice.stats().pendingRequests).toBe(1);

      release();
      expect(await outcome).toEqual({ value: 'from bob' });
      expect(s.alice.stats().pendingRequests).toBe(0);
      await expectStillServes(s);
    });

    it("attacks - unsolicited: a reply from bob's own key but for a request alice never made", async () => {
      // Bob answers a request mallory made; mallory re-publishes that reply at alice: wrong subject and audience.
      const ask = subjects.request(s.mesh, s.bob.agentId, s.mallory.agentId);
      const replyToMallory = subjects.reply(s.mesh, s.mallory.agentId, s.bob.agentId);
      const replies = await capture(s.attacker, replyToMallory);
      s.attacker.publish(ask, forgeFrame(s.mallory, { sub: ask, aud: s.bob.did, data: 'ping' }));
      const reply = await replies.next();
      replies.stop();
      const atAlice = subjects.reply(s.mesh, s.alice.agentId, s.bob.agentId);
      await expectRejected(s, s.alice, 'subject_mismatch', [[atAlice, reply.data]]);
      // A frame bob really signed for alice's reply subject, but that answers nothing of hers.
      const signedByBob = signFrame(s.bob.key, {
        sub: atAlice,
        typ: MESSAGE_TYPES.reply,
        aud: s.alice.did,
        cor: randomBytes(ID_LENGTH),
        data: 'stray',
      }).bytes;
      await expectRejected(s, s.alice, 'unsolicited', [[atAlice, signedByBob]]);
      await expectStillServes(s);
    });

    it('attacks - a reply of a non-reply type (bad_frame, the signer is at fault) or a second reply (unsolicited) from the right replier does not complete the request', async () => {
      const { release, outcome, cor } = await holdRequest(s, 'genuine');
      const sub = subjects.reply(s.mesh, s.alice.agentId, s.bob.agentId);
      // Signed with bob's own key: only the reply rules of §10 can stop these.
      const wrongType = signFrame(s.bob.key, { sub, typ: 'echo', aud: s.alice.did, cor, data: 'not a reply' }).bytes;
      await expectRejected(s, s.alice, 'bad_frame', [[sub, wrongType]]);
      // (In secure mode the server refused mallory's publish on bob's subject: alice saw nothing.)
      if (!s.secure) expect(s.rejectedAt.get(s.alice)!.at(-1)).toMatchObject({ blame: 'signer', signer: s.bob.did });
      expect(s.alice.stats().pendingRequests).toBe(1);

      release();
      expect(await outcome).toEqual({ value: 'genuine' });
      const second = signFrame(s.bob.key, { sub, typ: MESSAGE_TYPES.reply, aud: s.alice.did, cor, data: 'second answer' }).bytes;
      await expectRejected(s, s.alice, 'unsolicited', [[sub, second]]);
      await expectStillServes(s);
    });
  });

  describe('fuzz', () => {
    beforeEach(async () => {
      // Flood controls off: here every frame must reach the checks (the flood tests try the controls).
      s = await scene(fx, { intake: { unknownKeyRate: 1e9, unknownRate: 1e9, maxUnknownQueued: 100_000, maxKnownQueued: 100_000 } });
    });

    it('attacks - 10,000 random and mutated frames are each rejected with a known reason, and nothing escapes', {
      timeout: 60_000,
    }, async () => {
      const seed = Number(process.env.FUZZ_SEED ?? 0x7e5717);
      const random = prng(seed);
      const escaped: unknown[] = [];
      const onEscape = (err: unknown) => escaped.push(err);
      process.on('uncaughtException', onEscape);
      process.on('unhandledRejection', onEscape);
      try {
        // Real frames to mutate: a one-way message and a request, captured on the wire.
        const message = await captureAliceToBob(s, { text: 'a real message', n: [1, 2, 3] });
        const requestSubject = subjects.request(s.mesh, s.bob.agentId, s.alice.agentId);
        await s.alice.request(s.bob.did, 'echo', { q: 'a real request' });
        const request = s.wire.messages.find((m) => m.subject === requestSubject)!;
        const originals = [message, request];
        // Open mode: alice's frames are mutated and re-published on her subjects. Secure mode: the server
        // refuses those (tests above), so the attacker mutates real frames of its own, on its own subjects,
        // and every mutation reaches bob. The re-signed share mutates alice's bodies in both modes.
        const mutated = s.secure
          ? [
              await mallorySendsBob(s, msgSubject(s, s.bob, s.mallory.agentId), { text: 'a real message', n: [1, 2, 3] }),
              await mallorySendsBob(s, subjects.request(s.mesh, s.bob.agentId, s.mallory.agentId), { q: 'a real request' }),
            ]
          : originals;
        const inboxSubjects = [
          mutated[0]!.subject,
          mutated[1]!.subject,
          subjects.reply(s.mesh, s.bob.agentId, s.secure ? s.mallory.agentId : s.alice.agentId),
          msgSubject(s, s.bob, s.mallory.agentId),
        ];

        const ATTACKS = 10_000;
        const attacks: Array<[string, Uint8Array]> = [];
        const kinds = new Map<string, number>();
        for (let i = 0; i < ATTACKS; i++) {
          const original = mutated[i % 2]!;
          const kind = MUTATION_KINDS[Math.floor(random() * MUTATION_KINDS.length)]!;
          let bytes = mutateFrame(original.data, random, kind);
          let subject = kind === 'random' ? inboxSubjects[Math.floor(random() * inboxSubjects.length)]! : original.subject;
          // One in eight: mutate the body only and re-sign it with mallory's key, so the
          // MessagePack parser, not the signature check, meets the damage.
          if (kind !== 'random' && random() < 0.125) {
            const body = mutateFrame(originals[i % 2]!.data.subarray(HEADER_LENGTH), random, kind);
            bytes = assembleFrame(s.mallory, body);
            subject = msgSubject(s, s.bob, s.mallory.agentId);
            kinds.set('resigned', (kinds.get('resigned') ?? 0) + 1);
          }
          expect(bytes).not.toEqual(original.data);
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          attacks.push([subject, bytes]);
        }

        const before = s.bob.stats();
        const events = s.rejectedAt.get(s.bob)!;
        const eventsBefore = events.length;
        const calls = s.bobCalls.length;
        for (const [subject, bytes] of attacks) s.attacker.publish(subject, bytes);
        await s.attacker.flush();
        await waitFor(
          () => s.bob.stats().rejectedTotal >= before.rejectedTotal + ATTACKS,
          `bob to receive and refuse all ${ATTACKS} attack frames (seed ${seed})`,
          30_000,
          20,
        );
        await sleep(50);

        const after = s.bob.stats();
        expect(after.received - before.received).toBe(ATTACKS);
        expect(after.rejectedTotal - before.rejectedTotal, `seed ${seed} ${JSON.stringify(after.rejected)}`).toBe(ATTACKS);
        expect(after.accepted).toBe(before.accepted);
        expect(after.sent).toBe(before.sent);
        expect(s.bobCalls.length).toBe(calls);
        const fired = events.slice(eventsBefore);
        expect(fired).toHaveLength(ATTACKS);
        expect(fired.filter((e) => !isRejectReason(e.reason))).toEqual([]);
        if (s.secure) {
          // Every frame came from mallory's own connection, the server let each through, and every rejection says who sent it.
          expect(fired.filter((e) => e.publisher !== s.mallory.did || e.publisherAuthenticated !== true)).toEqual([]);
          expect(s.denied).toEqual([]);
        }
        const byReason = new Map<string, number>();
        for (const e of fired) byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + 1);
        for (const [reason, n] of byReason)
          expect(after.rejected[reason as RejectReason] - before.rejected[reason as RejectReason], reason).toBe(n);
        // The corpus reaches every stage before the body checks, and the re-signed share reaches the body checks.
        for (const reason of ['bad_frame', 'bad_version', 'bad_signature', 'issuer_mismatch'] as const) {
          expect(
            byReason.get(reason) ?? 0,
            `${reason} (seed ${seed}; reasons ${JSON.stringify(Object.fromEntries(byReason))})`,
          ).toBeGreaterThan(0);
        }
        expect(Object.keys(REJECT_REASONS)).toEqual(expect.arrayContaining([...byReason.keys()]));

        await expectStillServes(s);
        await sleep(20);
        expect(escaped).toEqual([]);
      } finally {
        process.off('uncaughtException', onEscape);
        process.off('unhandledRejection', onEscape);
      }
    });
  });
});
