/**
 * The verification pool (AgentInit.verifyWorkers): signatures on worker
 * threads, order per sender kept, a bad frame among good ones refused alone,
 * workers stopped when the last agent using them leaves.
 */
import { connect } from '@nats-io/transport-node';
import type { Agent, MessageContext } from '@trustmesh/client';
import { FrameVerifier, generateKey, signFrame, subjects, type VerifyResult } from '@trustmesh/protocol';
import { flipBit, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { type BatchCallback, sharedPools, type VerifyPool } from '../src/pool/pool.ts';
import { DEFAULT_INTAKE_LIMITS, Intake } from '../src/intake.ts';
import { PooledVerifier } from '../src/pool/pooled.ts';

const nats = withNats();

/** Every frame number each sender's handler calls saw, in call order. */
function record(agent: Agent): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  agent.handle('n', (data: unknown, ctx: MessageContext) => {
    const list = seen.get(ctx.from) ?? [];
    list.push(data as number);
    seen.set(ctx.from, list);
  });
  return seen;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('client verification pool', () => {
  it('pool - frames of each sender reach handlers in the order they were sent', async () => {
    const mesh = uniqueMesh();
    const receiver = await nats.join({ mesh, name: 'receiver', verifyWorkers: 2 });
    const seen = record(receiver);
    const senders = await Promise.all([nats.join({ mesh, name: 'a' }), nats.join({ mesh, name: 'b' })]);
    await waitFor(() => senders.every((s) => s.peers().some((p) => p.did === receiver.did)), 'senders know the receiver');
    await waitFor(() => receiver.peers().length === 2, 'the receiver knows both senders');
    const n = 400;
    for (const i of range(n)) for (const s of senders) s.send(receiver.did, 'n', i);
    await waitFor(() => senders.every((s) => (seen.get(s.did)?.length ?? 0) === n), 'every frame handled', 20_000);
    for (const s of senders) expect(seen.get(s.did)).toEqual(range(n));
    expect(receiver.stats().rejectedTotal).toBe(0);
    // The workers did the checking (not this thread's fallback).
    expect(sharedPools().find((p) => p.size === 2)?.pool.verified).toBeGreaterThan(0);
  });

  it('pool - a frame with a bad signature among good ones is refused alone, the others keep their order', async () => {
    const mesh = uniqueMesh();
    const receiver = await nats.join({ mesh, name: 'receiver', verifyWorkers: 2 });
    const seen = record(receiver);
    const sender = await nats.join({ mesh, name: 'sender' });
    await waitFor(() => receiver.peers().some((p) => p.did === sender.did), 'the receiver knows the sender');
    const sub = subjects.message(mesh, receiver.agentId, sender.agentId);
    const nc = await connect({ servers: nats.url });
    try {
      for (const i of range(200)) {
        const { bytes } = signFrame(sender.key, { sub, typ: 'n', data: i, aud: receiver.did });
        nc.publish(sub, i === 77 ? flipBit(bytes, 8 * 40) : bytes);
      }
      await nc.flush();
      await waitFor(
        () => (seen.get(sender.did)?.length ?? 0) === 199 && receiver.stats().rejectedTotal === 1,
        'good frames handled, the bad one refused',
        20_000,
      );
    } finally {
      await nc.close();
    }
    expect(seen.get(sender.did)).toEqual(range(200).filter((i) => i !== 77));
    expect(receiver.stats().rejected.bad_signature).toBe(1);
  });

  it('pool - agents asking for the same size share one pool; the last to leave stops its workers', async () => {
    const mesh = uniqueMesh();
    const size = 3; // a size no other test uses
    const one = await nats.join({ mesh, name: 'one', verifyWorkers: size });
    const two = await nats.join({ mesh, name: 'two', verifyWorkers: size });
    const entry = sharedPools().find((p) => p.size === size);
    expect(entry?.users).toBe(2);
    expect(entry?.pool.workers).toBe(size);
    await one.leave();
    expect(sharedPools().find((p) => p.size === size)?.users).toBe(1);
    await two.leave();
    expect(sharedPools().find((p) => p.size === size)).toBeUndefined();
    expect(entry?.pool.workers).toBe(0);
  });

  it('pool - verdicts answered out of order are applied in submission order', () => {
    // A pool whose batches the test answers by hand.
    const calls: { frames: readonly Uint8Array[]; done: BatchCallback }[] = [];
    const pool = { size: 2, verify: (frames: readonly Uint8Array[], done: BatchCallback) => calls.push({ frames, done }) };
    const alice = generateKey();
    const bob = generateKey();
    const verifier = new FrameVerifier({ self: bob.did });
    const settled: number[] = [];
    const pooled = new PooledVerifier({
      verifier,
      pool: pool as unknown as VerifyPool,
      batchSize: 2,
      settle: (_subject, _data, result: VerifyResult) => settled.push(result.ok ? (result.frame.data as number) : -1),
      resume: () => undefined,
    });
    const sub = subjects.message('m', bob.agentId, alice.agentId);
    for (const i of range(4)) pooled.submit(sub, signFrame(alice, { sub, typ: 'n', data: i, aud: bob.did }).bytes, undefined);
    expect(calls.map((c) => c.frames.length)).toEqual([2, 2]);
    calls[1]!.done(new Uint8Array([1, 1]));
    expect(settled).toEqual([]);
    calls[0]!.done(new Uint8Array([1, 0]));
    // Frame 1's worker said no: refused; the others in order.
    expect(settled).toEqual([0, -1, 2, 3]);
  });

  it('pool - a frame that comes alone is verified on the event loop, without a worker round trip', () => {
    const calls: unknown[] = [];
    const pool = { size: 2, verify: (frames: readonly Uint8Array[]) => calls.push(frames) };
    const alice = generateKey();
    const bob = generateKey();
    const settled: VerifyResult[] = [];
    let backlog = 0;
    const pooled = new PooledVerifier({
      verifier: new FrameVerifier({ self: bob.did }),
      pool: pool as unknown as VerifyPool,
      settle: (_subject, _data, result) => settled.push(result),
      resume: () => undefined,
      backlog: () => backlog,
    });
    const sub = subjects.message('m', bob.agentId, alice.agentId);
    const frame = (i: number) => signFrame(alice, { sub, typ: 'n', data: i, aud: bob.did }).bytes;
    pooled.submit(sub, frame(0), undefined);
    expect(calls).toHaveLength(0);
    expect(settled.map((r) => r.ok)).toEqual([true]);
    // With frames waiting behind it, the next one goes to the pool.
    backlog = 5;
    pooled.submit(sub, frame(1), undefined);
    pooled.submit(sub, flipBit(frame(2), 8 * 40), undefined);
    expect(settled).toHaveLength(1);
    expect(pooled.inline).toBe(1);
  });

  it('pool - a full pool holds frames in the intake, whose bounds refuse the excess; verdicts let the rest through', async () => {
    const calls: { frames: readonly Uint8Array[]; done: BatchCallback }[] = [];
    const pool = { size: 1, verify: (frames: readonly Uint8Array[], done: BatchCallback) => calls.push({ frames, done }) };
    const alice = generateKey();
    const bob = generateKey();
    const settled: boolean[] = [];
    const dropped: string[] = [];
    let intake: Intake | undefined;
    const pooled = new PooledVerifier({
      verifier: new FrameVerifier({ self: bob.did }),
      pool: pool as unknown as VerifyPool,
      batchSize: 2,
      maxInFlight: 4,
      settle: (_subject, _data, result) => settled.push(result.ok),
      resume: () => intake!.resume(),
    });
    intake = new Intake(
      (subject, data, sink) => pooled.submit(subject, data, sink),
      (_subject, _data, detail) => dropped.push(detail),
      () => true,
      { ...DEFAULT_INTAKE_LIMITS, maxKnownQueued: 10 },
      Date.now,
      () => pooled.ready(),
    );
    const sub = subjects.message('m', bob.agentId, alice.agentId);
    for (const i of range(30)) intake.push(sub, signFrame(alice, { sub, typ: 'n', data: i, aud: bob.did }).bytes);
    // 10 queued at most: 20 refused at the door.
    expect(dropped).toHaveLength(20);
    await new Promise((resolve) => setImmediate(resolve));
    // 4 in the pool (two batches), 6 held in the intake.
    expect(calls.map((c) => c.frames.length)).toEqual([2, 2]);
    expect(intake.queued).toBe(6);
    for (const c of calls.splice(0)) c.done(new Uint8Array(c.frames.length).fill(1));
    expect(settled).toEqual([true, true, true, true]);
    // Room again: the intake drains into the pool.
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.map((c) => c.frames.length)).toEqual([2, 2]);
    expect(intake.queued).toBe(2);
  });
});
