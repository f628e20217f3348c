/**
 * The mesh client against a real nats-server: request/reply, one-way send,
 * presence, leaving, errors, timeouts, aborts, the subject layout, many agents
 * on one connection, and isolation between meshes.
 */
import { connect } from '@nats-io/transport-node';
import {
  AgentClosedError,
  FrameTooLargeError,
  joinMesh,
  RemoteError,
  RequestTimeoutError,
  MESSAGE_TYPES,
  type Agent,
  type MessageContext,
} from '@trustmesh/client';
import {
  agentIdFromPublicKey,
  FrameVerifier,
  generateKey,
  openFrame,
  PUBLIC_KEY_LENGTH,
  senderOfSubject,
  subjects,
} from '@trustmesh/protocol';
import { describe, expect, it, vi } from 'vitest';
import { uniqueMesh, withNats } from '@trustmesh/test-utils';
import { capture } from '@trustmesh/test-utils';
import { nextEvent, sleep, waitFor } from '@trustmesh/test-utils';

const nats = withNats();

/** Two agents on a fresh mesh; bob joins second, so each has to learn the other from presence. */
async function pair(mesh = uniqueMesh()): Promise<{ mesh: string; alice: Agent; bob: Agent }> {
  const alice = await nats.join({ mesh, name: 'alice' });
  const bob = await nats.join({ mesh, name: 'bob' });
  return { mesh, alice, bob };
}

const knows = (agent: Agent, other: Agent) => agent.peers().some((p) => p.did === other.did);

describe('mesh', () => {
  it('mesh - a request gets the verified reply', async () => {
    const { alice, bob } = await pair();
    const seen: MessageContext[] = [];
    bob.handle('add', (data, ctx) => {
      seen.push(ctx);
      return (data as number[]).reduce((a, b) => a + b, 0);
    });
    const replyFrame = nextEvent(alice, 'accepted', (f) => f.typ === MESSAGE_TYPES.reply);

    await expect(alice.request(bob.did, 'add', [1, 2, 3])).resolves.toBe(6);

    const [reply] = await replyFrame;
    expect(reply.iss).toBe(bob.did);
    expect(reply.aud).toBe(alice.did);
    expect(reply.sub).toBe(subjects.reply(bob.mesh, alice.agentId, bob.agentId));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.from).toBe(alice.did);
    expect(seen[0]!.isRequest).toBe(true);
    expect(alice.stats().pendingRequests).toBe(0);
    expect(alice.stats().rejectedTotal).toBe(0);
    expect(bob.stats().rejectedTotal).toBe(0);
  });

  it('mesh - a request may name the recipient by agent id as well as by DID', async () => {
    const { alice, bob } = await pair();
    bob.handle('echo', (data) => data);
    await expect(alice.request(bob.agentId, 'echo', { x: [1, 'two', null] })).resolves.toEqual({ x: [1, 'two', null] });
  });

  it('mesh - one-way send reaches the handler with ctx.from equal to the sender DID', async () => {
    const { alice, bob } = await pair();
    const received = new Promise<{ data: unknown; ctx: MessageContext }>((resolve) =>
      bob.handle('note', (data, ctx) => resolve({ data, ctx })),
    );

    alice.send(bob.did, 'note', { text: 'hello' });

    const { data, ctx } = await received;
    expect(data).toEqual({ text: 'hello' });
    expect(ctx.from).toBe(alice.did);
    expect(ctx.typ).toBe('note');
    expect(ctx.isRequest).toBe(false);
    expect(ctx.frame.iss).toBe(alice.did);
    expect(ctx.frame.aud).toBe(bob.did);
    expect(ctx.frame.sub).toBe(subjects.message(bob.mesh, bob.agentId, alice.agentId));
  });

  it('mesh - a one-way message without a handler is counted as unhandled', async () => {
    const { alice, bob } = await pair();
    const unhandled = nextEvent(bob, 'unhandled');
    alice.send(bob.did, 'nobody-listens', 1);
    const [frame] = await unhandled;
    expect(frame.typ).toBe('nobody-listens');
    expect(bob.stats().unhandled).toBe(1);
  });

  it('mesh - presence: each agent sees the other in peers() with name, version, capabilities and lineage', async () => {
    const mesh = uniqueMesh();
    const alice = await nats.join({
      mesh,
      name: 'alice',
      version: '1.2.3',
      capabilities: ['summarize', 'translate'],
      lineage: { model: 'model-a', promptHash: 'p-aaa', configHash: 'c-aaa' },
    });
    const bob = await nats.join({ mesh, name: 'bob', version: '4.5.6', capabilities: ['search'], lineage: { model: 'model-b' } });

    await waitFor(() => knows(alice, bob) && knows(bob, alice), 'alice and bob to see each other');

    const bobAsSeen = alice.peers().find((p) => p.did === bob.did)!;
    expect(bobAsSeen).toMatchObject({
      did: bob.did,
      agentId: bob.agentId,
      name: 'bob',
      version: '4.5.6',
      capabilities: ['search'],
      lineage: { model: 'model-b' },
    });
    const aliceAsSeen = bob.peers().find((p) => p.did === alice.did)!;
    expect(aliceAsSeen).toMatchObject({
      did: alice.did,
      agentId: alice.agentId,
      name: 'alice',
      version: '1.2.3',
      capabilities: ['summarize', 'translate'],
      lineage: { model: 'model-a', promptHash: 'p-aaa', configHash: 'c-aaa' },
    });
    expect(aliceAsSeen.lastSeen).toBeGreaterThan(0);
    // An agent is not its own peer.
    expect(alice.peers().map((p) => p.did)).toEqual([bob.did]);
    expect(bob.peers().map((p) => p.did)).toEqual([alice.did]);
    expect(alice.stats().peers).toBe(1);
  });

  it('mesh - leave() makes the peer disappear (peerLeft) and later sends throw AgentClosedError', async () => {
    const { alice, bob } = await pair();
    await waitFor(() => knows(alice, bob), 'alice to see bob');
    const left = nextEvent(alice, 'peerLeft', (p) => p.did === bob.did);

    await bob.leave();

    const [peer] = await left;
    expect(peer.name).toBe('bob');
    expect(knows(alice, bob)).toBe(false);
    expect(bob.isClosed).toBe(true);
    let thrown: unknown;
    try {
      bob.send(alice.did, 'note', 'after leave');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(AgentClosedError);
    expect((thrown as AgentClosedError).code).toBe('closed');
    await expect(bob.request(alice.did, 'echo', 1)).rejects.toMatchObject({ name: 'AgentClosedError', code: 'closed' });
    await expect(bob.leave()).resolves.toBeUndefined(); // leaving twice is harmless
  });

  it('mesh - leave() fails a pending request with AgentClosedError instead of leaving it hanging', async () => {
    const { alice, bob } = await pair();
    bob.handle('slow', () => new Promise(() => undefined));
    const pending = alice.request(bob.did, 'slow', null, { timeoutMs: 10_000 });
    await waitFor(() => bob.stats().accepted > 0 && alice.stats().pendingRequests === 1, 'the request to reach bob');

    const outcome = pending.then(
      () => 'resolved',
      (err: unknown) => err,
    ); // observed before leave() rejects it

    await alice.leave();

    expect(await outcome).toBeInstanceOf(AgentClosedError);
    expect(alice.stats().pendingRequests).toBe(0);
  });

  it('mesh - a handler that throws gives the requester a RemoteError handler_error', async () => {
    const { alice, bob } = await pair();
    bob.handle('boom', () => {
      throw new Error('kaput');
    });
    const handlerError = nextEvent(bob, 'handlerError');

    const err = await alice.request(bob.did, 'boom', null, { timeoutMs: 3_000 }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).remoteCode).toBe('handler_error');
    expect((err as RemoteError).from).toBe(bob.did);
    expect((err as RemoteError).message).toContain('kaput');
    const [thrown] = await handlerError;
    expect((thrown as Error).message).toBe('kaput');
    expect(bob.stats().handlerErrors).toBe(1);
  });

  it('mesh - an async handler that rejects gives the requester a RemoteError handler_error', async () => {
    const { alice, bob } = await pair();
    bob.handle('boom', async () => {
      await sleep(5);
      throw new Error('async kaput');
    });
    await expect(alice.request(bob.did, 'boom', null, { timeoutMs: 3_000 })).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'remote_error',
      remoteCode: 'handler_error',
      message: expect.stringContaining('async kaput'),
    });
  });

  it('mesh - a request for an unregistered type gives RemoteError no_handler', async () => {
    const { alice, bob } = await pair();
    const errorFrame = nextEvent(alice, 'accepted', (f) => f.typ === MESSAGE_TYPES.error);
    const err = await alice.request(bob.did, 'no-such-type', null, { timeoutMs: 3_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).remoteCode).toBe('no_handler');
    const [frame] = await errorFrame;
    expect(frame.iss).toBe(bob.did);
  });

  it("mesh - an async handler's resolved value is the reply", async () => {
    const { alice, bob } = await pair();
    bob.handle('later', async (data) => {
      await sleep(20);
      return { doubled: (data as number) * 2 };
    });
    await expect(alice.request(bob.did, 'later', 21)).resolves.toEqual({ doubled: 42 });
  });

  it("mesh - a handler's undefined result arrives as null", async () => {
    const { alice, bob } = await pair();
    bob.handle('void', () => undefined);
    await expect(alice.request(bob.did, 'void')).resolves.toBeNull();
  });

  it("mesh - a request to an agent that isn't there rejects with RequestTimeoutError after timeoutMs", async () => {
    const alice = await nats.join({ mesh: uniqueMesh(), name: 'alice' });
    const ghost = generateKey();
    const started = performance.now();

    const err = await alice.request(ghost.did, 'echo', 1, { timeoutMs: 300 }).catch((e: unknown) => e);

    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(RequestTimeoutError);
    expect((err as RequestTimeoutError).code).toBe('timeout');
    expect((err as RequestTimeoutError).timeoutMs).toBe(300);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
    expect(alice.stats().pendingRequests).toBe(0);
  });

  it('mesh - the default request timeout comes from requestTimeoutMs', async () => {
    const alice = await nats.join({ mesh: uniqueMesh(), name: 'alice', requestTimeoutMs: 150 });
    const started = performance.now();
    await expect(alice.request(generateKey().did, 'echo')).rejects.toMatchObject({ code: 'timeout', timeoutMs: 150 });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('mesh - a reply that arrives after the timeout is refused as unsolicited', async () => {
    const { alice, bob } = await pair();
    let replied = false;
    bob.handle('slow', async () => {
      await sleep(250);
      replied = true;
      return 'too late';
    });
    await expect(alice.request(bob.did, 'slow', null, { timeoutMs: 50 })).rejects.toBeInstanceOf(RequestTimeoutError);
    const rejected = nextEvent(alice, 'rejected');
    const [event] = await rejected;
    expect(replied).toBe(true);
    expect(event.reason).toBe('unsolicited');
    expect(alice.stats().rejected.unsolicited).toBe(1);
  });

  it('mesh - a reply too large for a frame gives the requester RemoteError reply_too_large', async () => {
    const { alice, bob } = await pair();
    bob.handle('huge', () => 'x'.repeat(2 * 1024 * 1024));
    await expect(alice.request(bob.did, 'huge', null, { timeoutMs: 3_000 })).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'remote_error',
      remoteCode: 'reply_too_large',
    });
  });

  it('mesh - a reply that cannot be encoded gives the requester RemoteError reply_unencodable', async () => {
    const { alice, bob } = await pair();
    bob.handle('circular', () => {
      const node: { self?: unknown } = {};
      node.self = node;
      return node;
    });
    await expect(alice.request(bob.did, 'circular', null, { timeoutMs: 3_000 })).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'remote_error',
      remoteCode: 'reply_unencodable',
    });
  });

  it('mesh - a request too large to send rejects with FrameTooLargeError and leaves nothing pending', async () => {
    const { alice, bob } = await pair();
    const sentBefore = alice.stats().sent;
    await expect(alice.request(bob.did, 'echo', 'x'.repeat(2 * 1024 * 1024))).rejects.toBeInstanceOf(FrameTooLargeError);
    expect(() => alice.send(bob.did, 'echo', 'x'.repeat(2 * 1024 * 1024))).toThrow(FrameTooLargeError);
    expect(alice.stats().sent).toBe(sentBefore);
    expect(alice.stats().pendingRequests).toBe(0);
  });

  it('mesh - a request whose publish fails (shared connection closed) rejects and leaves nothing pending', async () => {
    const mesh = uniqueMesh();
    const nc = await nats.connect();
    const alice = nats.track(await joinMesh({ mesh, name: 'alice', connection: nc }));
    const bob = nats.track(await joinMesh({ mesh, name: 'bob', connection: nc }));
    await waitFor(() => knows(alice, bob) && knows(bob, alice), 'presence');
    const sentBefore = alice.stats().sent;
    await nc.close();

    const err = await alice.request(bob.did, 'echo', 1, { timeoutMs: 200 }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(Error);
    expect(alice.stats().sent).toBe(sentBefore);
    expect(alice.stats().pendingRequests).toBe(0);
  });

  it('mesh - an AbortSignal aborts a pending request', async () => {
    const { alice, bob } = await pair();
    bob.handle('slow', () => new Promise(() => undefined));
    const controller = new AbortController();
    const reason = new Error('user gave up');

    const pending = alice.request(bob.did, 'slow', null, { timeoutMs: 10_000, signal: controller.signal });
    await waitFor(() => bob.stats().accepted > 0, 'the request to reach bob');
    expect(alice.stats().pendingRequests).toBe(1);
    const started = performance.now();
    controller.abort(reason);

    await expect(pending).rejects.toBe(reason);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(alice.stats().pendingRequests).toBe(0);
  });

  it('mesh - an already aborted signal rejects at once and sends nothing', async () => {
    const { alice, bob } = await pair();
    const sentBefore = alice.stats().sent;
    await expect(alice.request(bob.did, 'echo', 1, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(alice.stats().sent).toBe(sentBefore);
    expect(alice.stats().pendingRequests).toBe(0);
  });

  it("mesh - every frame goes on a subject under the mesh root that ends with its publisher's id; replies on tm.<mesh>.rep.<requester>.<replier>, nothing under _INBOX", async () => {
    const mesh = uniqueMesh();
    const observer = await nats.connect();
    const meshTraffic = await capture(observer, subjects.all(mesh));
    const inboxTraffic = await capture(observer, '_INBOX.>');
    const everything = await capture(observer, '>');

    const { alice, bob } = await pair(mesh);
    await waitFor(() => knows(alice, bob) && knows(bob, alice), 'presence');
    bob.handle('echo', (data) => data);
    bob.handle('boom', () => {
      throw new Error('x');
    });
    alice.handle('note', () => undefined);
    await expect(alice.request(bob.did, 'echo', 'ping')).resolves.toBe('ping');
    await expect(alice.request(bob.did, 'boom')).rejects.toBeInstanceOf(RemoteError);
    await expect(alice.request(bob.did, 'missing')).rejects.toBeInstanceOf(RemoteError);
    const noted = nextEvent(alice, 'accepted', (f) => f.typ === 'note');
    bob.send(alice.did, 'note', 1);
    await noted;
    await bob.leave();
    await alice.leave();
    await observer.flush();
    await waitFor(() => meshTraffic.messages.length >= alice.stats().sent + bob.stats().sent, 'every published frame to be observed');

    // Everything the agents published, and nothing else, was under the mesh root.
    expect(meshTraffic.messages).toHaveLength(alice.stats().sent + bob.stats().sent);
    for (const { subject, data } of meshTraffic.messages) {
      expect(subject.startsWith(`tm.${mesh}.`)).toBe(true);
      const publisher = agentIdFromPublicKey(data.subarray(1, 1 + PUBLIC_KEY_LENGTH));
      expect([alice.agentId, bob.agentId]).toContain(publisher);
      expect(senderOfSubject(subject), subject).toBe(publisher);
      const opened = openFrame(data);
      expect(opened.ok && opened.frame.sub).toBe(subject);
    }
    const replies = meshTraffic.messages.filter((m) => {
      const opened = openFrame(m.data);
      return opened.ok && (opened.frame.typ === MESSAGE_TYPES.reply || opened.frame.typ === MESSAGE_TYPES.error);
    });
    expect(replies).toHaveLength(3);
    for (const reply of replies) expect(reply.subject).toBe(`tm.${mesh}.rep.${alice.agentId}.${bob.agentId}`);
    // _INBOX carries only JetStream's answers to the presence registry's KV calls: API replies and,
    // for a joiner's registry read, copies of presence frames already published under the mesh root.
    const published = (data: Uint8Array) => meshTraffic.messages.some((m) => Buffer.from(m.data).equals(Buffer.from(data)));
    for (const m of inboxTraffic.messages) if (openFrame(m.data).ok) expect(published(m.data)).toBe(true);
    // Outside the mesh root: the presence registry (KV puts of the same signed presence frames, and JetStream API calls).
    const outside = everything.messages.filter((m) => !m.subject.startsWith(`tm.${mesh}.`) && !m.subject.startsWith('_INBOX.'));
    for (const m of outside)
      expect(m.subject, m.subject).toMatch(new RegExp(`^(\\$KV\\.tm_${mesh}_presence\\.|\\$JS\\.API\\.|\\$JS\\.EVENT\\.ADVISORY\\.)`));
    const registryPuts = outside.filter((m) => m.subject.startsWith(`$KV.tm_${mesh}_presence.`));
    for (const put of registryPuts) expect(published(put.data)).toBe(true);
  });

  it('mesh - 200 agents share one NatsConnection and each answers a request from agent 0', { timeout: 60_000 }, async () => {
    const mesh = uniqueMesh();
    const nc = await connect({ servers: nats.url, name: 'shared' });
    try {
      const agents = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          joinMesh({ mesh, name: `agent-${i}`, connection: nc }).then((agent) => {
            nats.track(agent);
            agent.handle('whoami', (_data, ctx) => ({ name: agent.name, asker: ctx.from }));
            return agent;
          }),
        ),
      );
      const [first, ...others] = agents as [Agent, ...Agent[]];

      const answers = await Promise.all(
        others.map((agent) => first.request<{ name: string; asker: string }>(agent.did, 'whoami', null, { timeoutMs: 20_000 })),
      );

      expect(answers.map((a) => a.name)).toEqual(others.map((a) => a.name));
      expect(new Set(answers.map((a) => a.asker))).toEqual(new Set([first.did]));
      expect(first.stats().pendingRequests).toBe(0);
      expect(first.stats().rejectedTotal).toBe(0);

      // Leaving one agent closes neither the shared connection nor the others.
      const leaver = others[0]!;
      await leaver.leave();
      expect(nc.isClosed()).toBe(false);
      expect(() => leaver.send(first.did, 'whoami')).toThrow(AgentClosedError);
      await expect(first.request(others[1]!.did, 'whoami', null, { timeoutMs: 5_000 })).resolves.toMatchObject({ name: others[1]!.name });
      await expect(first.request(leaver.did, 'whoami', null, { timeoutMs: 200 })).rejects.toBeInstanceOf(RequestTimeoutError);

      await Promise.all(agents.map((agent) => agent.leave()));
      expect(nc.isClosed()).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it("mesh - two meshes on one server don't see each other's frames", async () => {
    const meshA = uniqueMesh('a');
    const meshB = uniqueMesh('b');
    const observer = await nats.connect();
    const trafficA = await capture(observer, subjects.all(meshA));

    const sharedKey = generateKey(); // the same identity may be a member of both meshes
    const alice = await nats.join({ mesh: meshA, name: 'alice' });
    const bobA = await nats.join({ mesh: meshA, name: 'bob-a', key: sharedKey });
    const carol = await nats.join({ mesh: meshB, name: 'carol' });
    const bobB = await nats.join({ mesh: meshB, name: 'bob-b', key: sharedKey });
    // Both directions: the joiner learns the others from their `alive` answers, which
    // must have arrived before the receive counters are read below.
    await waitFor(
      () => knows(alice, bobA) && knows(bobA, alice) && knows(carol, bobB) && knows(bobB, carol),
      'each mesh to see its own members',
    );

    const calledA: string[] = [];
    const calledB: string[] = [];
    bobA.handle('echo', (data) => {
      calledA.push(String(data));
      return data;
    });
    bobB.handle('echo', (data) => {
      calledB.push(String(data));
      return data;
    });

    const bobBReceived = bobB.stats().received;
    await expect(alice.request(sharedKey.did, 'echo', 'to-a')).resolves.toBe('to-a');
    alice.send(sharedKey.did, 'echo', 'note-a');
    await waitFor(() => calledA.length === 2, 'the one-way note in mesh A');
    const bobAReceived = bobA.stats().received;
    await expect(carol.request(sharedKey.did, 'echo', 'to-b')).resolves.toBe('to-b');
    await sleep(50);

    expect(calledA).toEqual(['to-a', 'note-a']);
    expect(calledB).toEqual(['to-b']);
    // Mesh A traffic never reached the mesh B agent with the same key, and the reverse.
    expect(bobB.stats().received).toBe(bobBReceived + 1);
    expect(bobA.stats().received).toBe(bobAReceived);
    expect(alice.peers().map((p) => p.name)).toEqual(['bob-a']);
    expect(carol.peers().map((p) => p.name)).toEqual(['bob-b']);
    expect(bobA.peers().map((p) => p.name)).toEqual(['alice']);
    expect(bobB.peers().map((p) => p.name)).toEqual(['carol']);
    for (const agent of [alice, bobA, carol, bobB]) expect(agent.stats().rejectedTotal).toBe(0);
    expect(trafficA.messages.length).toBeGreaterThan(0);
    expect(trafficA.messages.filter((m) => !m.subject.startsWith(`tm.${meshA}.`))).toEqual([]);
    const signersA = new Set(trafficA.messages.map((m) => agentIdFromPublicKey(m.data.subarray(1, 1 + PUBLIC_KEY_LENGTH))));
    expect(signersA).toEqual(new Set([alice.agentId, sharedKey.agentId]));
    const payloadsA = trafficA.messages.map((m) => openFrame(m.data)).map((r) => (r.ok ? r.frame.data : undefined));
    expect(payloadsA).toContain('to-a');
    expect(payloadsA).not.toContain('to-b');
  });
});

describe('mesh misuse', () => {
  it('mesh - joining with presence that peers would refuse throws InvalidArgumentError before anything is sent', async () => {
    const mesh = uniqueMesh();
    const wire = await capture(await nats.connect(), subjects.all(mesh));
    await expect(nats.join({ mesh, name: 'x'.repeat(129) })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(nats.join({ mesh, name: 'ok', capabilities: ['c'.repeat(129)] })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(nats.join({ mesh, name: 'ok', lineage: { model: 'm'.repeat(257) } })).rejects.toMatchObject({ code: 'invalid_argument' });
    await sleep(50);
    expect(wire.messages).toEqual([]);
  });

  it('mesh - a timeout that setTimeout cannot honour is refused, not turned into an instant failure', async () => {
    const { alice, bob } = await pair();
    bob.handle('echo', (data) => data);
    for (const timeoutMs of [Infinity, 0, -1, 1.5, 2 ** 31]) {
      expect(() => alice.request(bob.did, 'echo', 1, { timeoutMs }), String(timeoutMs)).toThrow(/timeoutMs must be an integer/);
    }
    await expect(nats.join({ mesh: uniqueMesh(), name: 'z', requestTimeoutMs: Infinity })).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    expect(alice.stats().pendingRequests).toBe(0);
    await expect(alice.request(bob.did, 'echo', 'still works', { timeoutMs: 2 ** 31 - 1 })).resolves.toBe('still works');
  });

  it('mesh - handlers are registered only for application types', async () => {
    const { alice } = await pair();
    expect(() => alice.handle('tm.reply', () => 1)).toThrow(/not starting with 'tm\.'/);
    expect(() => alice.handle('', () => 1)).toThrow(/non-empty/);
    expect(() => alice.send(alice.did, 'tm.presence', {})).toThrow(/not starting with 'tm\.'/);
  });
});

describe('mesh listeners', () => {
  it('mesh - a listener that throws is reported as a warning and the agent keeps serving', async () => {
    const { alice, bob } = await pair();
    bob.handle('echo', (data) => data);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      bob.on('accepted', () => {
        throw new Error('listener bug');
      });
      await expect(alice.request(bob.did, 'echo', 'one')).resolves.toBe('one');
      await expect(alice.request(bob.did, 'echo', 'two')).resolves.toBe('two');
      await waitFor(() => warnings.length >= 2, 'the warnings');
      expect(warnings[0]!.message).toBe("a 'accepted' listener threw: listener bug");
      expect((warnings[0] as Error & { code?: string }).code).toBe('TRUSTMESH_LISTENER_ERROR');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('mesh presence hub', () => {
  it('mesh - agents sharing a connection verify each presence frame once, and all of them learn the peer', async () => {
    const mesh = uniqueMesh();
    const nc = await connect({ servers: nats.url });
    const spy = vi.spyOn(FrameVerifier.prototype, 'verify');
    try {
      const locals = await Promise.all(Array.from({ length: 50 }, (_, i) => joinMesh({ mesh, name: `local-${i}`, connection: nc })));
      spy.mockClear();
      const newcomer = await nats.join({ mesh, name: 'newcomer' });
      await waitFor(() => locals.every((a) => knows(a, newcomer)), 'every local agent to learn the newcomer');
      const presenceSubject = subjects.presence(mesh, newcomer.agentId);
      const verifications = spy.mock.calls.filter(([, context]) => context.subject === presenceSubject).length;
      // One verification per connection that hears it: the shared one, and the newcomer's own.
      expect(verifications).toBe(2);
      for (const agent of locals) expect(agent.stats().accepted).toBeGreaterThanOrEqual(1);

      // A replayed presence frame is refused once by the shared memory and reported to every agent.
      const wire = await capture(await nats.connect(), presenceSubject);
      await newcomer.leave();
      const leaveFrame = (await wire.next()).data;
      await waitFor(() => locals.every((a) => !knows(a, newcomer)), 'every local agent to see the newcomer leave');
      const before = locals.map((a) => a.stats().rejected.replay);
      const attacker = await nats.connect();
      attacker.publish(presenceSubject, leaveFrame);
      await attacker.flush();
      await waitFor(() => locals.every((a, i) => a.stats().rejected.replay === before[i]! + 1), 'every agent to count the replay');
      await Promise.all(locals.map((a) => a.leave()));
      expect(nc.isClosed()).toBe(false);
    } finally {
      spy.mockRestore();
      await nc.close();
    }
  });
});
