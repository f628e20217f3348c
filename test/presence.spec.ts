/**
 * Presence (issue 6 §4, docs/protocol.md §9): O(joins) work per process, a
 * registry read once by joiners, heartbeats and expiry, ordering by iat with
 * tombstones, and bounds on the peer table and on presence frames.
 */
import { fork } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { type Agent, joinMesh, type PeerInfo, type RejectionEvent } from '@trustmesh/client';
import { FrameVerifier, generateKey, MESSAGE_TYPES, signFrame, subjects } from '@trustmesh/protocol';
import { capture, sleep, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it, vi } from 'vitest';

const nats = withNats();
const knows = (a: Agent, b: Agent) => a.peers().some((p) => p.did === b.did);

function presenceFrame(
  key = generateKey(),
  mesh: string,
  status: 'join' | 'alive' | 'leave' = 'join',
  extra: Record<string, unknown> = {},
  iat?: number,
) {
  const sub = subjects.presence(mesh, key.agentId);
  return {
    sub,
    key,
    bytes: signFrame(key, {
      sub,
      typ: MESSAGE_TYPES.presence,
      ...(iat !== undefined && { iat }),
      data: { status, name: 'x', version: '1', capabilities: [], ...extra },
    }).bytes,
  };
}

describe('presence', () => {
  it('presence - no agent answers a join, and each process verifies each presence frame once: work is O(joins), not O(agents x joins)', async () => {
    const mesh = uniqueMesh();
    const nc = await nats.connect();
    const observer = await nats.connect();
    const wire = await capture(observer, subjects.presenceAll(mesh));
    const locals = await Promise.all(
      Array.from({ length: 50 }, (_, i) => joinMesh({ mesh, name: `local-${i}`, connection: nc }).then((a) => nats.track(a))),
    );
    await waitFor(() => locals.every((a) => a.peers().length === 49), 'the local agents to know each other');
    const spy = vi.spyOn(FrameVerifier.prototype, 'verify');
    try {
      const before = wire.messages.length;
      const newcomers = [];
      for (let i = 0; i < 20; i++) newcomers.push(await nats.join({ mesh, name: `new-${i}` }));
      await waitFor(() => locals.every((a) => a.peers().length === 69), 'every local agent to know every other agent');
      await sleep(100);
      // 20 joins put 20 frames on the wire: nobody answered.
      expect(wire.messages.length - before).toBe(20);
      // The shared connection verified each join once, whatever the number of local agents on it.
      const sharedHubVerifications = spy.mock.calls.filter(([, ctx]) => ctx.subject.includes('.presence.')).length;
      // Each newcomer has its own connection (and hub) that hears the joins after it: 20 + 19 + ... + 1 = 210,
      // plus the shared connection's 20. 50 local agents would add 50 x 20 = 1,000 more if each verified on its own.
      expect(sharedHubVerifications).toBe(20 + 210);
      // A joiner learnt the agents already there from the registry, at once: no waiting for heartbeats.
      const late = await nats.join({ mesh, name: 'late' });
      expect(late.peers().length).toBe(70);
    } finally {
      spy.mockRestore();
    }
  });

  it('presence - a SIGKILLed agent (no leave) is expired after missing its heartbeats, with peerLeft reason expired; a live one is kept', {
    timeout: 30_000,
  }, async () => {
    const mesh = uniqueMesh();
    const bob = await nats.join({ mesh, name: 'bob', presence: { heartbeatMs: 200, expiryMs: 700 } });
    const alive = await nats.join({ mesh, name: 'alive', presence: { heartbeatMs: 200 } });
    const child = fork(new URL('./fixtures/agent-child.ts', import.meta.url), [nats.url, mesh, '200'], { execArgv: ['--import', 'tsx'] });
    try {
      const did = await new Promise<string>((resolve) => child.once('message', (m: { did: string }) => resolve(m.did)));
      await waitFor(() => bob.peers().some((p) => p.did === did), 'bob to see the child agent');
      const left = new Promise<[PeerInfo, string]>((resolve) =>
        bob.on('peerLeft', (peer, reason) => peer.did === did && resolve([peer, reason])),
      );
      child.kill('SIGKILL');
      const [, reason] = await left;
      expect(reason).toBe('expired');
      expect(bob.peers().some((p) => p.did === did)).toBe(false);
      // The live agent sent heartbeats all along and is still listed, well past the expiry time.
      await sleep(1_000);
      expect(knows(bob, alive)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('presence - a replayed old join does not bring back a departed agent; a replayed old leave does not remove a live one (at a receiver that never saw the originals)', async () => {
    const mesh = uniqueMesh();
    const observer = await nats.connect();
    const wire = await capture(observer, subjects.presenceAll(mesh));
    const key = generateKey();
    const alice = await nats.join({ mesh, name: 'alice', key });
    const join = await wire.next((m) => m.subject.endsWith(key.agentId));
    await alice.leave();
    const leave = await wire.next((m) => m.subject.endsWith(key.agentId));
    // carol joins after all that: she knows alice's leave only from the registry.
    const carol = await nats.join({ mesh, name: 'carol' });
    const refused: RejectionEvent[] = [];
    carol.on('rejected', (e) => refused.push(e));
    observer.publish(join.subject, join.data);
    await observer.flush();
    await waitFor(() => refused.length >= 1, 'the old join to be refused');
    expect(refused[0]).toMatchObject({ reason: 'stale', blame: 'publisher' });
    expect(refused[0]!.signer).toBeUndefined();
    expect(carol.peers().some((p) => p.did === key.did)).toBe(false);
    // alice comes back with the same key: a newer join. The old leave, replayed, changes nothing.
    const again = await nats.join({ mesh, name: 'alice again', key });
    await waitFor(() => knows(carol, again), 'carol to see alice again');
    observer.publish(leave.subject, leave.data);
    await observer.flush();
    await waitFor(() => refused.length >= 2, 'the old leave to be refused');
    expect(refused[1]).toMatchObject({ reason: 'stale', blame: 'publisher' });
    expect(knows(carol, again)).toBe(true);
  });

  it('presence - the peer table is capped (least recently seen evicted) and a presence frame over 8 KiB is refused unread', async () => {
    const mesh = uniqueMesh();
    const bob = await nats.join({ mesh, name: 'bob', presence: { maxPeers: 50 } });
    const evicted: string[] = [];
    bob.on('peerLeft', (peer, reason) => reason === 'evicted' && evicted.push(peer.did));
    const attacker = await connect({ servers: nats.url });
    try {
      for (let i = 0; i < 300; i++) {
        const { sub, bytes } = presenceFrame(generateKey(), mesh);
        attacker.publish(sub, bytes);
        if (i % 50 === 49) await attacker.flush();
      }
      await attacker.flush();
      await waitFor(() => evicted.length >= 250, 'the table to hold only the 50 most recent');
      expect(bob.peers().length).toBeLessThanOrEqual(50);
      const spy = vi.spyOn(FrameVerifier.prototype, 'verify');
      const tooLarge: RejectionEvent[] = [];
      bob.on('rejected', (e) => e.reason === 'too_large' && tooLarge.push(e));
      const big = presenceFrame(generateKey(), mesh, 'join', { name: 'x'.repeat(9000) });
      attacker.publish(big.sub, big.bytes);
      await attacker.flush();
      await waitFor(() => tooLarge.length === 1, 'the large presence frame to be refused');
      expect(spy.mock.calls.filter(([, ctx]) => ctx.subject === big.sub)).toHaveLength(0);
      spy.mockRestore();
    } finally {
      await attacker.close();
    }
  });

  it('presence - malformed presence (wrong type, an aud, bad claims, over the claim bounds) is refused as bad_frame and blames the signer', async () => {
    const mesh = uniqueMesh();
    const bob = await nats.join({ mesh, name: 'bob' });
    const events: RejectionEvent[] = [];
    bob.on('rejected', (e) => events.push(e));
    const attacker = await nats.connect();
    const key = generateKey();
    const sub = subjects.presence(mesh, key.agentId);
    const bad = [
      signFrame(key, { sub, typ: 'chat', data: { status: 'join', name: 'x', version: '1', capabilities: [] } }).bytes,
      signFrame(key, {
        sub,
        typ: MESSAGE_TYPES.presence,
        aud: bob.did,
        data: { status: 'join', name: 'x', version: '1', capabilities: [] },
      }).bytes,
      signFrame(key, { sub, typ: MESSAGE_TYPES.presence, data: { status: 'dance', name: 'x', version: '1', capabilities: [] } }).bytes,
      signFrame(key, { sub, typ: MESSAGE_TYPES.presence, data: { status: 'join', name: 'é'.repeat(100), version: '1', capabilities: [] } })
        .bytes, // 200 bytes > 128
    ];
    for (const frame of bad) attacker.publish(sub, frame);
    await attacker.flush();
    await waitFor(() => events.length === bad.length, 'every malformed presence frame to be refused');
    for (const e of events) {
      expect(e.reason).toBe('bad_frame');
      expect(e.blame).toBe('signer');
      expect(e.signer).toBe(key.did);
    }
    expect(bob.peers()).toHaveLength(0);
  });
});
