/**
 * What secure mode adds to the attack suite (test/attacks.spec.ts runs every
 * attack in both modes): the attacker is an admitted agent, so what it publishes
 * is attributed to it, and to nobody else; and it cannot tap the wire.
 */
import { MESSAGE_TYPES, type RejectionEvent } from '@trustmesh/client';
import { subjects } from '@trustmesh/protocol';
import {
  attackFixture,
  BODY_OFFSET,
  capture,
  expectStillServes,
  flipBit,
  forgeFrame,
  msgSubject,
  scene,
  sleep,
  waitFor,
  type Scene,
} from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';

const fx = attackFixture('secure');

/** Flood controls off: bob verifies every frame, so each rejection is a verdict on a checked frame. */
const VERIFY_ALL = { intake: { unknownKeyRate: 1e9, unknownRate: 1e9, maxUnknownQueued: 100_000, maxKnownQueued: 100_000 } };

describe('attacks in secure mode: attribution', () => {
  let s: Scene;

  it('secure attacks - a flood of bad signatures from one admitted agent is attributed to that agent, and only to it', async () => {
    s = await scene(fx, VERIFY_ALL);
    const mallory = s.mallory;
    const carol = await fx.join({ mesh: s.mesh, name: 'carol' });
    carol.handle('echo', (data) => data);
    await waitFor(() => s.bob.peers().length === 2, 'bob to know alice and carol');
    const bobEvents = s.rejectedAt.get(s.bob)!;
    const before = bobEvents.length;
    const aliceEvents = s.rejectedAt.get(s.alice)!;
    const aliceBefore = aliceEvents.length;
    const carolEvents: RejectionEvent[] = [];
    carol.on('rejected', (e) => carolEvents.push(e));

    // 3,000 frames signed by mallory, each with one body bit flipped, on each of her subjects to bob,
    // while alice and carol talk to bob; and 300 more on alice's and carol's subjects, to frame them.
    const own = [
      msgSubject(s, s.bob, mallory.agentId),
      subjects.request(s.mesh, s.bob.agentId, mallory.agentId),
      subjects.reply(s.mesh, s.bob.agentId, mallory.agentId),
    ];
    const framed = [msgSubject(s, s.bob, s.alice.agentId), msgSubject(s, s.bob, carol.agentId)];
    const FLOOD = 3_000;
    const FRAMING = 300;
    const talk: Array<Promise<unknown>> = [];
    for (let i = 0; i < FLOOD + FRAMING; i++) {
      const subject = i < FLOOD ? own[i % own.length]! : framed[i % framed.length]!;
      const frame = forgeFrame(s.mallory, { sub: subject, aud: s.bob.did, data: `flood ${i}` });
      s.attacker.publish(subject, flipBit(frame, (BODY_OFFSET + 10) * 8 + (i % 8)));
      if (i % 500 === 0) {
        talk.push(
          expect(s.alice.request(s.bob.did, 'echo', `alice ${i}`)).resolves.toBe(`alice ${i}`),
          expect(carol.request(s.bob.did, 'echo', `carol ${i}`)).resolves.toBe(`carol ${i}`),
        );
        await s.attacker.flush();
      }
    }
    await s.attacker.flush();
    await waitFor(() => bobEvents.length - before >= FLOOD, `bob to refuse all ${FLOOD} frames`, 20_000);
    await waitFor(() => s.denied.length >= FRAMING, `the server to refuse all ${FRAMING} framing attempts`);
    await sleep(50);

    const fired = bobEvents.slice(before);
    expect(fired).toHaveLength(FLOOD);
    const unexpected = fired.filter(
      (e) =>
        e.reason !== 'bad_signature' ||
        e.blame !== 'publisher' ||
        e.publisher !== mallory.did ||
        e.publisherAuthenticated !== true ||
        e.signer !== undefined,
    );
    expect(unexpected).toEqual([]);
    expect(new Set(fired.map((e) => e.publisher))).toEqual(new Set([mallory.did]));
    expect(fired.filter((e) => !own.includes(e.subject))).toEqual([]);
    // The framing attempts never reached bob: the server refused each, and says why.
    expect(s.denied).toHaveLength(FRAMING);
    for (const denied of s.denied) {
      expect(framed).toContain(denied.subject);
      expect(denied.message).toMatch(/may publish only on subjects whose last token is its own agent id/);
    }
    // The genuine traffic went through, and nobody else refused anything.
    await Promise.all(talk);
    expect(talk).toHaveLength(14);
    expect(aliceEvents.slice(aliceBefore)).toEqual([]);
    expect(carolEvents).toEqual([]);
    expect(s.bob.stats().rejected.bad_signature).toBe(FLOOD);
  });

  it('secure attacks - with the default flood controls, the frames bob sheds unchecked name the same publisher, and blame nobody', async () => {
    s = await scene(fx);
    const sub = msgSubject(s, s.bob, s.mallory.agentId);
    const events = s.rejectedAt.get(s.bob)!;
    const FLOOD = 1_000;
    for (let i = 0; i < FLOOD; i++)
      s.attacker.publish(sub, flipBit(forgeFrame(s.mallory, { sub, aud: s.bob.did }), (BODY_OFFSET + 10) * 8));
    await s.attacker.flush();
    await waitFor(() => events.length === FLOOD, `bob to refuse all ${FLOOD} frames`);
    const checked = events.filter((e) => e.reason === 'bad_signature');
    const shed = events.filter((e) => e.reason === 'overloaded');
    // The intake's budget for an unknown key (50 a second by default) lets some through to the signature check.
    expect(checked.length).toBeGreaterThan(0);
    expect(shed.length).toBeGreaterThan(0);
    expect(checked.length + shed.length).toBe(FLOOD);
    for (const e of checked) expect(e.blame).toBe('publisher');
    for (const e of shed) expect(e.blame).toBe('none'); // shed unread: no verdict on the frame
    expect(events.filter((e) => e.publisher !== s.mallory.did || e.publisherAuthenticated !== true)).toEqual([]);
    await expectStillServes(s);
  });

  it('secure attacks - the attacker cannot tap the wire: subscribing to the mesh is refused, and alice and bob still talk', async () => {
    s = await scene(fx);
    const tap = await capture(s.attacker, subjects.all(s.mesh));
    await waitFor(() => s.denied.length === 1, 'the server to refuse the subscription');
    expect(s.denied[0]).toMatchObject({ operation: 'subscribe', subject: subjects.all(s.mesh) });
    await expect(s.alice.request(s.bob.did, 'echo', 'private')).resolves.toBe('private');
    await sleep(20);
    expect(tap.messages).toEqual([]);
    // The operator's tap saw the same exchange: there was something to see.
    expect(s.wire.messages.some((m) => m.subject === subjects.request(s.mesh, s.bob.agentId, s.alice.agentId))).toBe(true);
    tap.stop();
  });

  // Known gap: the connection's presence hub builds its rejections with publisherOf(), which always
  // says publisherAuthenticated: false (packages/client/src/presence-hub.ts); the inbox path says true.
  // When that is fixed this test starts failing: turn it into a plain `it`.
  it('secure attacks - a rejected presence frame names its publisher as authenticated', async () => {
    s = await scene(fx);
    const sub = subjects.presence(s.mesh, s.mallory.agentId);
    const data = { status: 'join', name: 'mallory', version: '1', capabilities: [] };
    s.attacker.publish(sub, forgeFrame(s.mallory, { sub, typ: MESSAGE_TYPES.presence, aud: s.bob.did, data }));
    const events = s.rejectedAt.get(s.bob)!;
    await waitFor(() => events.length === 1, 'bob to refuse the presence frame');
    expect(events[0]).toMatchObject({ reason: 'bad_frame', publisher: s.mallory.did, publisherAuthenticated: true });
  });
});
