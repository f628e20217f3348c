/**
 * The client side of trust against a real nats-server, with the broker played
 * by a bare key: pushes ordered by version, priming from the bucket, the
 * inbound and outbound guards, and what reports carry.
 */
import { Kvm } from '@nats-io/kv';
import { type AgentKey, generateKey, meshBuckets, meshSubjects, signFrame, verifyStateless } from '@trustmesh/protocol';
import { capture, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { parseTrustReport, type TrustUpdate, trustGuard, UntrustedPeerError, z } from '../src/index.ts';

const nats = withNats();

function update(broker: AgentKey, mesh: string, u: Omit<TrustUpdate, 'at' | 'tier'> & { tier?: TrustUpdate['tier'] }) {
  const sub = meshSubjects(mesh).broadcast('trust', broker.agentId);
  const tier = u.tier ?? (u.score < 300 ? 'untrusted' : u.score < 500 ? 'probationary' : 'standard');
  return { sub, bytes: signFrame(broker, { sub, typ: 'trust.update', data: { ...u, tier, at: Date.now() } }).bytes };
}

describe('trustGuard', () => {
  it('push - updates apply by version only, from configured brokers only', async () => {
    const mesh = uniqueMesh();
    const broker = generateKey();
    const guard = trustGuard({ brokers: [broker.did] });
    await nats.join({ mesh, name: 'a', extensions: [guard] });
    const x = generateKey().did;
    const nc = await nats.connect();
    const v2 = update(broker, mesh, { did: x, score: 250, reason: 'equivocation', ref: 'frame:00', version: 2 });
    const v1 = update(broker, mesh, { did: x, score: 600, reason: 'valid_traffic', ref: 'presence:00', version: 1 });
    nc.publish(v2.sub, v2.bytes);
    nc.publish(v1.sub, v1.bytes);
    await waitFor(() => guard.stats.updates + guard.stats.ignored === 2, 'both updates seen');
    expect(guard.trustOf(x)).toBe(250);
    expect(guard.tierOf(x)).toBe('untrusted');
    expect(guard.stats).toMatchObject({ updates: 1, ignored: 1 });
    expect(guard.trustOf(generateKey().did)).toBe(500);
  });

  it('prime - a joining client reads signed updates from the bucket and skips unsigned or foreign ones', async () => {
    const mesh = uniqueMesh();
    const broker = generateKey();
    const other = generateKey();
    const nc = await nats.connect();
    const kv = await new Kvm(nc).create(meshBuckets(mesh).trust);
    const [x, y, w] = [generateKey(), generateKey(), generateKey()];
    const good = update(broker, mesh, { did: x.did, score: 420, reason: 'protocol_violation', ref: 'frame:aa', version: 2 });
    const foreign = update(other, mesh, { did: y.did, score: 10, reason: 'equivocation', ref: 'frame:bb', version: 5 });
    const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
    await kv.put(x.agentId, JSON.stringify({ schema: 1, state: {}, update: b64(good.bytes) }));
    await kv.put(y.agentId, JSON.stringify({ schema: 1, state: {}, update: b64(foreign.bytes) }));
    await kv.put(w.agentId, 'not json');
    await kv.put(`rules.${w.agentId}`, JSON.stringify({ history: [] }));
    const guard = trustGuard({ brokers: [broker.did] });
    await nats.join({ mesh, name: 'late', extensions: [guard] });
    expect(guard.stats.primeProblem).toBeUndefined();
    expect(guard.stats.primed).toBe(1);
    expect(guard.trustOf(x.did)).toBe(420);
    expect(guard.trustOf(y.did)).toBe(500);
  });

  it('guards - untrusted senders are refused (blame none), sends to them throw UntrustedPeerError, brokers are exempt', async () => {
    const mesh = uniqueMesh();
    const broker = generateKey();
    const guard = trustGuard({ brokers: [broker.did] });
    const a = await nats.join({ mesh, name: 'a', extensions: [guard] });
    const x = await nats.join({ mesh, name: 'x' });
    const nc = await nats.connect();
    const push = update(broker, mesh, { did: x.did, score: 299, reason: 'policy_violation', ref: 'frame:cc', version: 1 });
    nc.publish(push.sub, push.bytes);
    await waitFor(() => guard.tierOf(x.did) === 'untrusted', 'x untrusted');
    const refusal = new Promise((resolve) => a.on('rejected', resolve));
    x.send(a.did, 'hello', 1);
    expect(await refusal).toMatchObject({ reason: 'untrusted', blame: 'none' });
    expect(() => a.send(x.did, 'hello')).toThrow(UntrustedPeerError);
    await expect(a.request(x.did, 'hello')).rejects.toBeInstanceOf(UntrustedPeerError);
    // A broker's own score never stops its traffic.
    const pushB = update(broker, mesh, { did: broker.did, score: 0, reason: 'equivocation', ref: '', version: 1 });
    nc.publish(pushB.sub, pushB.bytes);
    await waitFor(() => guard.trustOf(broker.did) === 0, 'broker score cached');
    expect(() => a.send(broker.did, 'trust.get', {})).not.toThrow();
  });

  it('policy - a breach is refused (blame signer) and reported with the frame and the signed, published declaration', async () => {
    const mesh = uniqueMesh();
    const broker = generateKey();
    const subjects = meshSubjects(mesh);
    const nc = await nats.connect();
    const declared = await capture(nc, subjects.broadcast('rules', '*'));
    const reports = await capture(nc, subjects.message(broker.agentId, '*'));
    const rules = { types: { 'task.run': { maxBytes: 200, schema: { type: 'object', required: ['task'] } } } };
    const guard = trustGuard({ brokers: [broker.did], policy: rules, reportViolations: true });
    const a = await nats.join({ mesh, name: 'a', extensions: [guard] });
    const x = await nats.join({ mesh, name: 'x' });
    const declaration = await declared.next();
    expect(guard.stats.declarations).toBe(1);
    const refusal = new Promise((resolve) => a.on('rejected', resolve));
    x.send(a.did, 'task.run', { nope: 1 });
    expect(await refusal).toMatchObject({ reason: 'policy', blame: 'signer', signer: x.did });
    const sent = await reports.next();
    const opened = verifyStateless(sent.data, sent.subject);
    if (!opened.ok) throw new Error(opened.reason);
    expect(opened.frame).toMatchObject({ iss: a.did, aud: broker.did, typ: 'trust.report' });
    const parsed = parseTrustReport(opened.frame.data);
    if (!parsed.ok) throw new Error(parsed.detail);
    expect(parsed.report.claim).toBe('policy');
    expect(Buffer.from(parsed.report.declaration!)).toEqual(Buffer.from(declaration.data));
    const evidence = verifyStateless(parsed.report.frames[0]!.frame, parsed.report.frames[0]!.subject);
    expect(evidence.ok && evidence.frame.iss).toBe(x.did);
    // The same frame is not reported twice; a good frame passes.
    x.send(a.did, 'task.run', { task: 'sum' });
    await waitFor(() => a.stats().accepted >= 1, 'the good frame passes');
    expect(guard.stats.reportsSent).toBe(1);
  });

  it('equivocation - the report carries the first frame from memory and the refused second one', async () => {
    const mesh = uniqueMesh();
    const broker = generateKey();
    const subjects = meshSubjects(mesh);
    const nc = await nats.connect();
    const reports = await capture(nc, subjects.message(broker.agentId, '*'));
    const guard = trustGuard({ brokers: [broker.did], reportViolations: true });
    const a = await nats.join({ mesh, name: 'a', extensions: [guard] });
    const x = generateKey();
    const sub = subjects.message(a.agentId, x.agentId);
    const id = new Uint8Array(16).fill(9);
    const one = signFrame(x, { sub, typ: 'hello', data: 1, aud: a.did, id }).bytes;
    const two = signFrame(x, { sub, typ: 'hello', data: 2, aud: a.did, id }).bytes;
    nc.publish(sub, one);
    await waitFor(() => a.stats().accepted === 1, 'first accepted');
    nc.publish(sub, two);
    const sent = await reports.next();
    const opened = verifyStateless(sent.data, sent.subject);
    if (!opened.ok) throw new Error(opened.reason);
    const parsed = parseTrustReport(opened.frame.data);
    if (!parsed.ok) throw new Error(parsed.detail);
    expect(parsed.report.claim).toBe('equivocation');
    expect(parsed.report.frames.map((f) => Buffer.from(f.frame))).toEqual([Buffer.from(one), Buffer.from(two)]);
  });

  it('misuse - no brokers, a bad DID, or zod rules to declare throw at once', () => {
    expect(() => trustGuard({ brokers: [] })).toThrow(/at least one/);
    expect(() => trustGuard({ brokers: ['did:key:nope'] })).toThrow(/not a did:key/);
    const broker = generateKey().did;
    expect(() => trustGuard({ brokers: [broker], policy: { mesh: { schema: z.string() } }, declare: true })).toThrow(/JSON Schema/);
    expect(() => trustGuard({ brokers: [broker], policy: { mesh: { schema: z.string() } } })).not.toThrow();
  });
});
