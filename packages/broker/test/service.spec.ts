/**
 * The broker service end to end on a real nats-server (JetStream KV): scores
 * start at 500, rewards are slow and capped, each attributable violation costs
 * its policy delta with its reason code, what blames nobody changes nobody.
 */
import { generateKey, toHex } from '@trustmesh/protocol';
import { flipBit, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { type PolicyRules, type TrustView, UntrustedPeerError } from '@trustmesh/trust';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SCORING_POLICY } from '../src/index.ts';
import { Mesh, message, report } from './service-helpers.ts';

const nats = withNats();
let mesh: Mesh;
afterEach(async () => {
  await mesh?.close();
});

const TASK_RULES: PolicyRules = {
  types: { 'task.run': { schema: { type: 'object', properties: { task: { type: 'string' } }, required: ['task'] } } },
};

describe('broker service', () => {
  it('scores - a new agent starts at 500, by query and in every cache', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const broker = await mesh.broker();
    const x = await mesh.member('x');
    const y = await mesh.member('y');
    const view = await y.agent.request<TrustView>(broker.did, 'trust.get', { did: x.agent.did });
    expect(view).toEqual({ did: x.agent.did, score: 500, tier: 'standard', version: 0 });
    expect(y.guard.trustOf(x.agent.did)).toBe(500);
    expect(y.guard.tierOf(x.agent.did)).toBe('standard');
    // Any DID, even one never seen on the mesh.
    const stranger = generateKey().did;
    expect(await y.agent.request<TrustView>(broker.did, 'trust.get', stranger)).toMatchObject({ score: 500, version: 0 });
  });

  it('rewards - verified presence raises a score by 1 a frame, capped at 2 a window', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const broker = await mesh.broker({ presenceRewards: true });
    const y = await mesh.member('y');
    const x = await mesh.member('x', { heartbeatMs: 100 });
    const rule = DEFAULT_SCORING_POLICY.rewards.events.valid_traffic;
    const cap = 500 + rule.capPerWindow / rule.delta;
    await waitFor(() => y.guard.trustOf(x.agent.did) === cap, `x at ${cap} in y's cache`, 5_000);
    // Many more heartbeats in the same window raise nothing.
    const capped = broker.stats().capped;
    await waitFor(() => broker.stats().capped >= capped + 5, 'five more capped rewards', 5_000);
    expect((await broker.view(x.agent.did)).score).toBe(cap);
    const mine = y.updates.filter((u) => u.did === x.agent.did);
    expect(mine.map((u) => [u.score, u.reason, u.version])).toEqual([
      [501, 'valid_traffic', 1],
      [502, 'valid_traffic', 2],
    ]);
    // The window can only roll over at an hour boundary: the test skips it if it ran across one.
    if (Math.floor(Date.now() / rule.windowMs) === Math.floor(mine[0]!.at / rule.windowMs)) expect(mine).toHaveLength(2);
  });

  it('penalties - each attributable violation costs its delta, with its reason code, and enforcement follows', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const broker = await mesh.broker();
    const r = await mesh.member('receiver', { policy: TASK_RULES, report: true });
    const z = await mesh.member('z');
    const xKey = generateKey();
    const x = await mesh.member('x', { key: xKey });
    await waitFor(() => broker.stats().declarations >= 1, "the broker records r's rules");
    const to = { did: r.agent.did, agentId: r.agent.agentId };
    const p = DEFAULT_SCORING_POLICY.penalties.events;
    let hellos = 0;
    r.agent.on('accepted', (frame) => {
      if (frame.iss === xKey.did && frame.typ === 'hello') hellos++;
    });
    const acceptedFromX = () => hellos;

    // 1. A policy breach: validly signed, addressed to r, payload fails r's declared schema.
    x.agent.send(r.agent.did, 'task.run', { nope: 1 });
    await waitFor(() => z.guard.trustOf(xKey.did) === 500 - p.policy_violation.delta, 'policy_violation in z');
    // 2. A protocol violation: a msg frame without aud, signed by x.
    const noAud = message(mesh.mesh, xKey, to, 'hello', 1, false);
    const nc = await nats.connect();
    nc.publish(noAud.subject, noAud.bytes);
    const afterProtocol = 500 - p.policy_violation.delta - p.protocol_violation.delta;
    await waitFor(() => z.guard.trustOf(xKey.did) === afterProtocol, 'protocol_violation in z');
    // 3. Equivocation: two different frames, one id.
    const id = new Uint8Array(16).fill(7);
    const first = message(mesh.mesh, xKey, to, 'hello', 'first', true, id);
    const second = message(mesh.mesh, xKey, to, 'hello', 'second', true, id);
    nc.publish(first.subject, first.bytes);
    await nc.flush();
    await waitFor(() => acceptedFromX() === 1, 'r accepts the first');
    nc.publish(second.subject, second.bytes);
    const afterEquivocation = afterProtocol - p.equivocation.delta;
    await waitFor(() => z.guard.trustOf(xKey.did) === afterEquivocation, 'equivocation in z');

    const reasons = z.updates.filter((u) => u.did === xKey.did).map((u) => [u.reason, u.score, u.version]);
    expect(reasons).toEqual([
      ['policy_violation', 470, 1],
      ['protocol_violation', 420, 2],
      ['equivocation', 270, 3],
    ]);
    expect(z.updates.every((u) => u.ref.startsWith('frame:') || u.ref.startsWith('frames:'))).toBe(true);
    const stored = await broker.read(xKey.did);
    expect(stored.state?.counts).toEqual({ policy_violation: 1, protocol_violation: 1, equivocation: 1 });

    // Now untrusted (270 < 300): z refuses x's frames, and refuses to send to x.
    expect(z.guard.tierOf(xKey.did)).toBe('untrusted');
    const refused = new Promise((resolve) => z.agent.on('rejected', (e) => e.reason === 'untrusted' && resolve(e)));
    x.agent.send(z.agent.did, 'hello', 1);
    expect(await refused).toMatchObject({ reason: 'untrusted', blame: 'none' });
    expect(() => z.agent.send(xKey.did, 'hello', 1)).toThrow(UntrustedPeerError);
    await expect(z.agent.request(xKey.did, 'hello', 1)).rejects.toMatchObject({ code: 'untrusted' });
  });

  it('unattributed - forgeries claiming x and replays of its frames change nothing and are counted', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const broker = await mesh.broker();
    const r = await mesh.member('receiver', { report: true });
    const reporter = await mesh.member('reporter');
    const xKey = generateKey();
    const to = { did: r.agent.did, agentId: r.agent.agentId };
    const real = message(mesh.mesh, xKey, to, 'hello', 'real');
    let fromX = 0;
    r.agent.on('accepted', (frame) => {
      if (frame.iss === xKey.did) fromX++;
    });
    const nc = await nats.connect();
    nc.publish(real.subject, real.bytes);
    await waitFor(() => fromX === 1, 'r accepts the real frame');
    // The flood at the receiver: 50 forgeries claiming x (a bit flipped in the body) and 50 replays.
    for (let i = 0; i < 50; i++) {
      nc.publish(real.subject, flipBit(real.bytes, (97 + (i % 20)) * 8));
      nc.publish(real.subject, real.bytes);
    }
    await waitFor(() => r.agent.stats().rejectedTotal >= 100, 'r refuses the flood');
    // x is not a known peer of r, so part of the flood is dropped unread (per-key budget): none of it is accepted.
    const seen = r.agent.stats();
    expect(seen.rejected.bad_signature + seen.rejected.replay + seen.rejected.overloaded).toBe(100);
    expect(fromX).toBe(1);
    // The same evidence reported to the broker, as any peer could.
    const forged = flipBit(real.bytes, 100 * 8);
    for (let i = 0; i < 20; i++) {
      report(reporter.agent, broker, {
        v: 1,
        claim: 'rejection',
        reason: 'bad_signature',
        frames: [{ subject: real.subject, frame: forged }],
      });
      report(reporter.agent, broker, { v: 1, claim: 'protocol', frames: [{ subject: real.subject, frame: forged }] });
      report(reporter.agent, broker, {
        v: 1,
        claim: 'rejection',
        reason: 'replay',
        frames: [{ subject: real.subject, frame: real.bytes }],
      });
    }
    await waitFor(() => broker.stats().reports === 60, 'the broker reads 60 reports');
    await broker.idle();
    const stats = broker.stats();
    expect(stats.unattributed.causes).toEqual({ bad_signature: 40, replay: 20 });
    expect(stats.applied).toBe(0);
    expect(await broker.read(xKey.did)).toEqual({ state: undefined, revision: 0 });
    expect(await broker.view(xKey.did)).toMatchObject({ score: 500, version: 0 });
    expect(r.guard.stats.reportsSent).toBe(0); // no rejection of the flood blamed x
  });

  it('fabricated reports - evidence that does not verify or breaks no rule changes nothing', async () => {
    mesh = new Mesh(nats, uniqueMesh());
    const broker = await mesh.broker();
    const liar = await mesh.member('liar', { policy: TASK_RULES });
    await waitFor(() => broker.stats().declarations >= 1, "the broker records liar's rules");
    const xKey = generateKey();
    const to = { did: liar.agent.did, agentId: liar.agent.agentId };
    const good = message(mesh.mesh, xKey, to, 'task.run', { task: 'sum' });
    const bad = message(mesh.mesh, xKey, to, 'task.run', { nope: 1 });
    const elsewhere = message(mesh.mesh, xKey, { did: xKey.did, agentId: xKey.agentId }, 'task.run', { nope: 1 });
    // The liar's real declaration, read back from its guard's report path is not exposed: sign a fresh one it never published.
    const { signFrame } = await import('@trustmesh/protocol');
    const rulesSubject = mesh.subjects.broadcast('rules', liar.agent.agentId);
    const unpublished = signFrame(liar.agent.key, {
      sub: rulesSubject,
      typ: 'trust.rules',
      data: { v: 1, rules: { mesh: { maxBytes: 1 } } },
    });
    const published = signFrame(liar.agent.key, { sub: rulesSubject, typ: 'trust.rules', data: { v: 1, rules: TASK_RULES } });
    const reports = [
      { v: 1, claim: 'protocol', frames: [{ subject: good.subject, frame: good.bytes }] }, // valid frame, no fault
      { v: 1, claim: 'policy', frames: [{ subject: good.subject, frame: good.bytes }], declaration: published.bytes }, // breaks nothing
      { v: 1, claim: 'policy', frames: [{ subject: bad.subject, frame: bad.bytes }], declaration: unpublished.bytes }, // rules never published
      { v: 1, claim: 'policy', frames: [{ subject: bad.subject, frame: bad.bytes }] }, // no declaration
      { v: 1, claim: 'policy', frames: [{ subject: elsewhere.subject, frame: elsewhere.bytes }], declaration: published.bytes }, // not to the reporter
      { v: 1, claim: 'policy', frames: [{ subject: good.subject, frame: flipBit(bad.bytes, 120 * 8) }], declaration: published.bytes }, // tampered
      {
        v: 1,
        claim: 'equivocation',
        frames: [
          { subject: good.subject, frame: good.bytes },
          { subject: good.subject, frame: good.bytes },
        ],
      },
      {
        v: 1,
        claim: 'equivocation',
        frames: [
          { subject: good.subject, frame: good.bytes },
          { subject: bad.subject, frame: bad.bytes },
        ],
      },
      { v: 1, claim: 'protocol', frames: [{ subject: 'tm.othermesh.msg.a.b', frame: good.bytes }] },
      { v: 2, claim: 'protocol', frames: [] },
      'not a report',
      { v: 1, claim: 'protocol', frames: [{ subject: good.subject, frame: new Uint8Array(200) }] },
    ];
    for (const body of reports) liar.agent.send(broker.did, 'trust.report', body);
    await waitFor(() => broker.stats().reports === reports.length, 'the broker reads every report');
    await broker.idle();
    const stats = broker.stats();
    expect(stats.applied).toBe(0);
    expect(stats.invalid + stats.unattributed.total).toBe(reports.length);
    expect(stats.invalid).toBeGreaterThanOrEqual(reports.length - 1); // the zero frame names no signer: unattributed at most
    expect(await broker.read(xKey.did)).toEqual({ state: undefined, revision: 0 });
    // The same policy report with a real breach does count: the checks above failed for their own reasons.
    liar.agent.send(broker.did, 'trust.report', {
      v: 1,
      claim: 'policy',
      frames: [{ subject: bad.subject, frame: bad.bytes }],
      declaration: published.bytes,
    });
    await waitFor(() => broker.stats().applied === 1, 'the genuine report applies');
    expect((await broker.view(xKey.did)).score).toBe(470);
    expect(toHex(good.body.id)).not.toBe(toHex(bad.body.id));
  });
});
