/**
 * The broker service over time and in numbers, on a real nats-server:
 * restarts, two brokers on one bucket, enforcement across clients, secure mode.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { generateKey, meshBuckets, signFrame } from '@trustmesh/protocol';
import { flipBit, sleep, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { trustGuard } from '@trustmesh/trust';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SCORING_POLICY } from '../src/index.ts';
import { Mesh, message, report } from './service-helpers.ts';

const nats = withNats();
let mesh: Mesh;
afterEach(async () => {
  await mesh?.close();
});

const p = DEFAULT_SCORING_POLICY.penalties.events;

describe('broker service durability', () => {
  it('restart - scores survive a broker restart, and a client joining later primes its cache from the bucket', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const key = generateKey();
    const broker = await mesh.broker({ key });
    const reporter = await mesh.member('reporter');
    const xKey = generateKey();
    const to = { did: reporter.agent.did, agentId: reporter.agent.agentId };
    for (let i = 0; i < 2; i++) {
      const noAud = message(mesh.mesh, xKey, to, 'hello', i, false);
      report(reporter.agent, broker, { v: 1, claim: 'protocol', frames: [{ subject: noAud.subject, frame: noAud.bytes }] });
    }
    await waitFor(() => broker.stats().applied === 2, 'two violations applied');
    const expected = 500 - p.protocol_violation.delta - p.protocol_violation.delta * p.protocol_violation.growth; // 425
    expect((await broker.view(xKey.did)).score).toBe(expected);
    await broker.close();
    mesh.brokers.length = 0;

    const again = await mesh.broker({ key });
    expect(await again.view(xKey.did)).toMatchObject({ score: expected, version: 2 });
    // Repetition is remembered across the restart: the third offence takes delta × growth².
    const third = message(mesh.mesh, xKey, to, 'hello', 3, false);
    report(reporter.agent, again, { v: 1, claim: 'protocol', frames: [{ subject: third.subject, frame: third.bytes }] });
    await waitFor(() => again.stats().applied === 1, 'third violation applied');
    const after = expected - p.protocol_violation.delta * p.protocol_violation.growth ** 2;
    expect((await again.view(xKey.did)).score).toBe(Math.round(after));
    const late = await mesh.member('late');
    expect(late.guard.stats.primed).toBeGreaterThanOrEqual(1);
    expect(late.guard.trustOf(xKey.did)).toBe(Math.round(after));
    expect(late.guard.updateOf(xKey.did)).toMatchObject({ version: 3, reason: 'protocol_violation' });
  });

  it('two brokers - concurrent events on one bucket lose no update (compare-and-set, re-read, re-apply)', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const policy = { penalties: { events: { protocol_violation: { delta: 1, growth: 1, max: 1 } } } };
    const a = await mesh.broker({ policy });
    const b = await mesh.broker({ policy });
    const reporterA = await mesh.member('reporter-a');
    const reporterB = await mesh.member('reporter-b');
    const watcher = await mesh.member('watcher');
    const xKey = generateKey();
    const n = 60;
    for (let i = 0; i < n; i++) {
      const reporter = i % 2 === 0 ? reporterA : reporterB;
      const to = { did: reporter.agent.did, agentId: reporter.agent.agentId };
      const noAud = message(mesh.mesh, xKey, to, 'hello', i, false);
      report(reporter.agent, i % 2 === 0 ? a : b, { v: 1, claim: 'protocol', frames: [{ subject: noAud.subject, frame: noAud.bytes }] });
    }
    await waitFor(() => a.stats().reports + b.stats().reports === n, 'both brokers read their reports', 10_000);
    await Promise.all([a.idle(), b.idle()]);
    const { state } = await a.read(xKey.did);
    expect(state?.version).toBe(n);
    expect(state?.counts).toEqual({ protocol_violation: n });
    expect(a.stats().applied + b.stats().applied).toBe(n);
    expect(Math.round(state!.score)).toBe(500 - n);
    // The watcher took updates from both brokers, ordered by version, and ends at the last one.
    await waitFor(() => watcher.guard.updateOf(xKey.did)?.version === n, 'watcher at the last version');
    expect(watcher.guard.trustOf(xKey.did)).toBe(500 - n);
    console.log(`two brokers: ${n} events, ${a.stats().conflicts + b.stats().conflicts} compare-and-set conflicts retried`);
    // And one conflict for certain: a holds revision n in its cache, b writes n + 1, a writes next.
    const send = (broker: typeof a, reporter: typeof reporterA, i: number) => {
      const to = { did: reporter.agent.did, agentId: reporter.agent.agentId };
      const noAud = message(mesh.mesh, xKey, to, 'hello', `late ${i}`, false);
      report(reporter.agent, broker, { v: 1, claim: 'protocol', frames: [{ subject: noAud.subject, frame: noAud.bytes }] });
    };
    const conflicts = a.stats().conflicts;
    send(b, reporterB, 1);
    await waitFor(() => b.stats().reports === n / 2 + 1, 'b reads');
    await b.idle();
    send(a, reporterA, 2);
    await waitFor(() => a.stats().reports === n / 2 + 1, 'a reads');
    await a.idle();
    expect(a.stats().conflicts).toBe(conflicts + 1);
    expect((await a.read(xKey.did)).state?.counts).toEqual({ protocol_violation: n + 2 });
  });

  it('enforcement - an agent pushed below 300 has its frames refused by every other client within a second', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const broker = await mesh.broker();
    const reporter = await mesh.member('reporter');
    const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => mesh.member(`c${i}`)));
    const xKey = generateKey();
    const x = await mesh.member('x', { key: xKey });
    const to = { did: reporter.agent.did, agentId: reporter.agent.agentId };
    const id = new Uint8Array(16).fill(1);
    const one = message(mesh.mesh, xKey, to, 'hello', 1, true, id);
    const two = message(mesh.mesh, xKey, to, 'hello', 2, true, id);
    const id2 = new Uint8Array(16).fill(2);
    const three = message(mesh.mesh, xKey, to, 'hello', 3, true, id2);
    const four = message(mesh.mesh, xKey, to, 'hello', 4, true, id2);
    const t0 = performance.now();
    report(reporter.agent, broker, {
      v: 1,
      claim: 'equivocation',
      frames: [one, two].map((f) => ({ subject: f.subject, frame: f.bytes })),
    });
    report(reporter.agent, broker, {
      v: 1,
      claim: 'equivocation',
      frames: [three, four].map((f) => ({ subject: f.subject, frame: f.bytes })),
    });
    await waitFor(() => clients.every((c) => c.guard.tierOf(xKey.did) === 'untrusted'), 'every client sees x untrusted', 1_000, 1);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(1_000);
    expect(clients[0]!.guard.trustOf(xKey.did)).toBe(500 - p.equivocation.delta - p.equivocation.delta * p.equivocation.growth);
    for (const c of clients) x.agent.send(c.agent.did, 'hello', 'still here');
    await waitFor(() => clients.every((c) => c.agent.stats().rejected.untrusted === 1), 'every client refuses x', 1_000);
    console.log(`enforcement: report to 5 clients refusing: ${elapsed.toFixed(1)} ms`);
  });

  it('decay - when decay alone lifts a score across the refuse line, the broker pushes it (reason decay) at that moment', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    // Bad scores halve their distance to 500 every 2 s here (default: 14 days).
    const broker = await mesh.broker({ policy: { decay: { halfLifeBelowMs: 2_000 } } });
    const watcher = await mesh.member('watcher');
    const reporter = await mesh.member('reporter');
    const xKey = generateKey();
    const to = { did: reporter.agent.did, agentId: reporter.agent.agentId };
    for (const fill of [1, 2]) {
      const id = new Uint8Array(16).fill(fill);
      const pair = [1, 2].map((n) => message(mesh.mesh, xKey, to, 'hello', n, true, id));
      report(reporter.agent, broker, { v: 1, claim: 'equivocation', frames: pair.map((f) => ({ subject: f.subject, frame: f.bytes })) });
    }
    await waitFor(() => watcher.guard.tierOf(xKey.did) === 'untrusted', 'x untrusted');
    const low = watcher.guard.updateOf(xKey.did)!;
    // 500 − 450·2^(−t/2 s) reaches 299.5 (rounds to 300) after 2·log2(450/200.5) s.
    const expectedMs = 2_000 * Math.log2((500 - low.score) / 200.5);
    const t0 = low.at;
    await waitFor(() => watcher.guard.tierOf(xKey.did) === 'probationary', 'decay push', 10_000);
    const pushed = watcher.guard.updateOf(xKey.did)!;
    expect(pushed).toMatchObject({ reason: 'decay', tier: 'probationary', score: 300, version: low.version + 1 });
    expect(pushed.at - t0).toBeGreaterThanOrEqual(Math.floor(expectedMs) - 5);
    expect(pushed.at - t0).toBeLessThan(expectedMs + 500);
  });

  it('duplicates - one piece of evidence reported by two receivers, to two brokers, counts once; resync() catches a cache up from the bucket', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const aKey = generateKey();
    const a = await mesh.broker({ key: aKey });
    const b = await mesh.broker();
    const r1 = await mesh.member('r1');
    const r2 = await mesh.member('r2');
    const xKey = generateKey();
    const to = { did: r1.agent.did, agentId: r1.agent.agentId };
    const id = new Uint8Array(16).fill(3);
    const pair = [1, 2].map((n) => message(mesh.mesh, xKey, to, 'hello', n, true, id));
    const body = { v: 1 as const, claim: 'equivocation' as const, frames: pair.map((f) => ({ subject: f.subject, frame: f.bytes })) };
    report(r1.agent, a, body);
    report(r2.agent, b, body);
    report(r2.agent, a, body);
    await waitFor(() => a.stats().reports + b.stats().reports === 3, 'reports read');
    await Promise.all([a.idle(), b.idle()]);
    expect(a.stats().applied + b.stats().applied).toBe(1);
    expect(a.stats().duplicates + b.stats().duplicates).toBe(2);
    expect(await a.view(xKey.did)).toMatchObject({ score: 500 - p.equivocation.delta, version: 1 });
    // A client that missed the push (it joined with no broker listed) catches up from the bucket.
    // Either broker may have applied it: the client lists both.
    const late = trustGuard({ brokers: [a.did, b.did] });
    const agent = await nats.join({ mesh: mesh.mesh, name: 'late', extensions: [late] });
    expect(late.trustOf(xKey.did)).toBe(500 - p.equivocation.delta);
    // An update that was never pushed (as if missed while disconnected): written to the bucket only.
    const y = generateKey();
    const nc = await nats.connect();
    const kv = await new Kvm(nc).open(meshBuckets(mesh.mesh).trust);
    const sub = mesh.subjects.broadcast('trust', aKey.agentId);
    const data = { did: y.did, score: 250, tier: 'untrusted', reason: 'equivocation', ref: 'frame:00', version: 1, at: Date.now() };
    const update = Buffer.from(signFrame(aKey, { sub, typ: 'trust.update', data }).bytes).toString('base64');
    await kv.put(y.agentId, JSON.stringify({ schema: 1, state: {}, update }));
    expect(late.trustOf(y.did)).toBe(500);
    await late.resync();
    expect(late.trustOf(y.did)).toBe(250);
    await agent.leave();
  });

  it('push - updates signed by anyone but a configured broker are ignored, and a missing bucket is survived', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const brokerKey = generateKey();
    // No broker has run on this mesh: no bucket.
    const guard = trustGuard({ brokers: [brokerKey.did] });
    const agent = await nats.join({ mesh: mesh.mesh, name: 'early', extensions: [guard] });
    expect(guard.stats.primeProblem).toMatch(/trust bucket not read/);
    const impostor = generateKey();
    const victim = generateKey().did;
    const nc = await nats.connect();
    const subject = mesh.subjects.broadcast('trust', impostor.agentId);
    const fake = signFrame(impostor, {
      sub: subject,
      typ: 'trust.update',
      data: { did: victim, score: 0, tier: 'untrusted', reason: 'equivocation', ref: '', version: 99, at: Date.now() },
    });
    nc.publish(subject, fake.bytes);
    await waitFor(() => guard.stats.ignored >= 1, 'the impostor update is ignored');
    expect(guard.trustOf(victim)).toBe(500);
    // The real broker starts later; its pushes are taken.
    const broker = await mesh.broker({ key: brokerKey });
    const reporter = await mesh.member('reporter', { brokers: [brokerKey.did] });
    const noAud = message(mesh.mesh, impostor, { did: reporter.agent.did, agentId: reporter.agent.agentId }, 'x', 1, false);
    report(reporter.agent, broker, { v: 1, claim: 'protocol', frames: [{ subject: noAud.subject, frame: noAud.bytes }] });
    await waitFor(() => guard.trustOf(impostor.did) === 500 - p.protocol_violation.delta, 'the broker update is taken');
    await agent.leave();
  });

  it('secure mode - a bad signature published on x’s own subject, read back from the capture stream, counts against x', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    const stream = meshBuckets(mesh.mesh).auditCapture;
    await jsm.streams.add({ name: stream, subjects: [`tm.${mesh.mesh}.msg.>`], no_ack: true });
    const broker = await mesh.broker({ secure: true });
    const open = await mesh.broker({ secure: false });
    const reporter = await mesh.member('reporter');
    const xKey = generateKey();
    const to = { did: reporter.agent.did, agentId: reporter.agent.agentId };
    const real = message(mesh.mesh, xKey, to, 'hello', 1);
    const forged = flipBit(real.bytes, 110 * 8);
    nc.publish(real.subject, forged);
    nc.publish(real.subject, real.bytes);
    nc.publish(real.subject, real.bytes);
    await nc.flush();
    let info = await jsm.streams.info(stream);
    for (let i = 0; i < 200 && info.state.messages < 3; i++) {
      await sleep(10);
      info = await jsm.streams.info(stream);
    }
    expect(info.state.messages).toBeGreaterThanOrEqual(3);
    const first = info.state.first_seq;
    const frame = (seq: number, bytes: Uint8Array) => ({ subject: real.subject, frame: bytes, seq });
    // Without a capture position: unattributed, even in secure mode.
    report(reporter.agent, broker, {
      v: 1,
      claim: 'rejection',
      reason: 'bad_signature',
      frames: [{ subject: real.subject, frame: forged }],
    });
    // A position that holds other bytes: invalid.
    report(reporter.agent, broker, { v: 1, claim: 'rejection', reason: 'bad_signature', frames: [frame(first + 1, forged)] });
    // Open mode never blames the publisher.
    report(reporter.agent, open, { v: 1, claim: 'rejection', reason: 'bad_signature', frames: [frame(first, forged)] });
    await waitFor(() => broker.stats().reports === 2 && open.stats().reports === 1, 'reports read');
    await Promise.all([broker.idle(), open.idle()]);
    expect(await broker.read(xKey.did)).toEqual({ state: undefined, revision: 0 });
    expect(broker.stats().unattributed.causes).toEqual({ bad_signature: 1 });
    expect(broker.stats().invalid).toBe(1);
    expect(open.stats().unattributed.causes).toEqual({ bad_signature: 1 });
    // The real thing: the forgery as stored, and the replay (two positions, same bytes, x's subject).
    report(reporter.agent, broker, { v: 1, claim: 'rejection', reason: 'bad_signature', frames: [frame(first, forged)] });
    await waitFor(() => broker.stats().applied === 1, 'bad signature applied');
    report(reporter.agent, broker, {
      v: 1,
      claim: 'rejection',
      reason: 'replay',
      frames: [frame(first + 1, real.bytes), frame(first + 2, real.bytes)],
    });
    await waitFor(() => broker.stats().applied === 2, 'replay applied');
    const { state } = await broker.read(xKey.did);
    expect(state?.counts).toEqual({ bad_signature_authenticated: 1, replay_authenticated: 1 });
    expect(Math.round(state!.score)).toBe(500 - p.bad_signature_authenticated.delta - p.replay_authenticated.delta);
    expect(state?.last?.ref).toBe(`audit:${first + 1},${first + 2}`);
  });
});
