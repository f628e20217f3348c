import { type Agent, joinMesh, type RejectionEvent } from '@trustmesh/client';
import { Kvm } from '@nats-io/kv';
import { generateKey, meshBuckets, meshSubjects, signFrame, type AgentKey } from '@trustmesh/protocol';
import { capture, flipBit, uniqueMesh, waitFor, withNats, sleep } from '@trustmesh/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CONTROL_TYPES,
  type ControlRefusal,
  createOperator,
  STATE_KEY,
  KilledError,
  killSwitch,
  type KillSwitch,
  type Operator,
} from '../src/index.ts';

const nats = withNats();

interface Member {
  agent: Agent;
  ks: KillSwitch;
}

const operators: Operator[] = [];
afterEach(async () => {
  await Promise.all(operators.splice(0).map((o) => o.close()));
});

async function operator(mesh: string, key: AgentKey): Promise<Operator> {
  const op = await createOperator({ key, mesh, connection: await nats.connect() });
  operators.push(op);
  return op;
}

async function members(mesh: string, opKey: AgentKey, n: number, connections = 1): Promise<Member[]> {
  const ncs = await Promise.all(Array.from({ length: connections }, () => nats.connect()));
  const out: Member[] = [];
  for (let i = 0; i < n; i++) {
    const ks = killSwitch({ operators: [opKey.did] });
    const agent = nats.track(await joinMesh({ mesh, name: `a${i}`, connection: ncs[i % connections]!, extensions: [ks] }));
    out.push({ agent, ks });
  }
  return out;
}

const rejections = (agent: Agent, reason: string): RejectionEvent[] => {
  const seen: RejectionEvent[] = [];
  agent.on('rejected', (e) => {
    if (e.reason === reason) seen.push(e);
  });
  return seen;
};

describe('kill - global', () => {
  it('kill - a global kill halts 100 agents and the operator sees 100 acknowledgements', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const all = await members(mesh, opKey, 100, 4);
    const op = await operator(mesh, opKey);
    const result = await op.kill({ timeoutMs: 5_000 });
    expect(result).toMatchObject({
      op: 'kill',
      seq: 1,
      expected: 100,
      acknowledged: 100,
      missing: [],
      states: { halted: 100, running: 0 },
    });
    expect(result.latencyMs.max).toBeGreaterThan(0);
    expect(all.every((m) => m.ks.state().halted)).toBe(true);
    // sending after the kill rejects with KilledError, code `killed`
    const [a, b] = [all[0]!, all[1]!];
    expect(() => a.agent.send(b.agent.did, 'hello', 1)).toThrow(KilledError);
    await expect(a.agent.request(b.agent.did, 'echo', 1)).rejects.toMatchObject({ name: 'KilledError', code: 'killed', scope: 'self' });
    const revived = await op.revive({ timeoutMs: 5_000 });
    expect(revived).toMatchObject({ op: 'revive', seq: 2, acknowledged: 100, missing: [], states: { halted: 0, running: 100 } });
    expect(all.some((m) => m.ks.state().halted)).toBe(false);
  });

  it('kill - expected comes from presence: an agent that left is not expected, one without the kill switch is missing', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a, b] = await members(mesh, opKey, 2);
    const plain = await nats.join({ mesh, name: 'no-kill-switch' });
    const op = await operator(mesh, opKey);
    await b!.agent.leave();
    let known = await op.knownAgents();
    for (let i = 0; i < 200 && known.length !== 2; i++) {
      await sleep(10);
      known = await op.knownAgents();
    }
    expect(new Set(known)).toEqual(new Set([a!.agent.agentId, plain.agentId]));
    const result = await op.kill({ timeoutMs: 300 });
    expect(result).toMatchObject({ expected: 2, acknowledged: 1, missing: [plain.did] });
    expect(a!.ks.state().halted).toBe(true);
  });

  it('kill - an in-flight handler receives the abort, the pending request fails, and the halted agent refuses inbound work', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a, b] = await members(mesh, opKey, 2);
    let started = false;
    let abortReason: unknown;
    b!.agent.handle('slow', (_data, ctx) => {
      started = true;
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          abortReason = ctx.signal.reason;
          resolve('aborted');
        });
      });
    });
    const pending = a!.agent.request(b!.agent.did, 'slow', null, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    await waitFor(() => started, 'the handler to start');
    const op = await operator(mesh, opKey);
    const result = await op.kill();
    expect(result.acknowledged).toBe(2);
    expect(await pending).toBeInstanceOf(KilledError);
    expect(abortReason).toBeInstanceOf(KilledError);
    expect((abortReason as KilledError).scope).toBe('self');
    // frames reaching a halted agent are refused `killed` (a raw, validly signed message from a non-agent key)
    const refused = rejections(b!.agent, 'killed');
    const nc = await nats.connect();
    const outsider = generateKey();
    const sub = meshSubjects(mesh).message(b!.agent.agentId, outsider.agentId);
    nc.publish(sub, signFrame(outsider, { sub, typ: 'hello', aud: b!.agent.did, data: 1 }).bytes);
    await waitFor(() => refused.length === 1, 'the halted agent to refuse a message');
    expect(refused[0]!.blame).toBe('none');
  });

  it('kill - an agent started after the kill is halted before its first send', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a] = await members(mesh, opKey, 1);
    const op = await operator(mesh, opKey);
    await op.kill();
    const watch = await capture(await nats.connect(), `tm.${mesh}.msg.>`);
    const ks = killSwitch({ operators: [opKey.did] });
    const late = await nats.join({ mesh, name: 'late', extensions: [ks] });
    // joinMesh has returned: the state is known already, nothing was sent
    expect(ks.state()).toMatchObject({ seq: 1, halted: true, all: true, source: 'record' });
    expect(() => late.send(a!.agent.did, 'hello', 1)).toThrow(KilledError);
    await sleep(100);
    expect(watch.messages).toHaveLength(0);
    // and a restart does not clear it: leave, join again with the same key
    await late.leave();
    const ks2 = killSwitch({ operators: [opKey.did] });
    const again = await nats.join({ mesh, name: 'late', key: late.key, extensions: [ks2] });
    expect(ks2.state().halted).toBe(true);
    expect(() => again.send(a!.agent.did, 'hello', 1)).toThrow(KilledError);
    const revived = await op.revive();
    expect(revived.missing).toEqual([]);
    expect(ks2.state().halted).toBe(false);
  });
});

describe('kill - forgeries change nothing', () => {
  it('kill - a kill signed by a non-operator key is refused `not_operator` and halts nothing', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a] = await members(mesh, opKey, 1);
    const mallory = generateKey();
    const refused: string[] = [];
    a!.ks.on('refused', (r) => refused.push(r.reason));
    // Mallory runs the operator code with her own key: the agent does not count her as an operator
    const fake = await operator(mesh, mallory);
    const result = await fake.kill({ timeoutMs: 300 });
    expect(result.acknowledged).toBe(0);
    expect(result.missing).toEqual([a!.agent.did]);
    expect(refused).toEqual(['not_operator']);
    expect(a!.ks.state().halted).toBe(false);
    // and a record she wrote is refused by a joiner too
    const ks = killSwitch({ operators: [opKey.did] });
    await nats.join({ mesh, name: 'joiner', extensions: [ks] });
    expect(ks.state().halted).toBe(false);
    expect(ks.stats().refused).toEqual({ not_operator: 1 });
    // the real operator passes her sequence but does not build on her snapshot (a global kill)
    const real = await operator(mesh, opKey);
    expect(await real.state()).toEqual({ seq: 0, all: false, killed: [] });
    const targeted = await real.kill({ agent: a!.agent.did });
    expect(targeted).toMatchObject({ seq: 2, acknowledged: 1 });
    expect(a!.ks.state()).toMatchObject({ seq: 2, all: false, halted: true, killed: [a!.agent.did] });
    await waitFor(() => ks.state().seq === 2, 'the joiner (on its own connection) to apply seq 2');
    expect(ks.state()).toMatchObject({ seq: 2, all: false, halted: false });
  });

  it('kill - agents sharing a connection each keep their own operators', async () => {
    const mesh = uniqueMesh();
    const [op1, op2] = [generateKey(), generateKey()];
    const nc = await nats.connect();
    const ks1 = killSwitch({ operators: [op1.did] });
    const ks2 = killSwitch({ operators: [op2.did] });
    nats.track(await joinMesh({ mesh, name: 'one', connection: nc, extensions: [ks1] }));
    nats.track(await joinMesh({ mesh, name: 'two', connection: nc, extensions: [ks2] }));
    const refused: string[] = [];
    ks2.on('refused', (r) => refused.push(r.reason));
    const op = await operator(mesh, op1);
    const result = await op.kill({ timeoutMs: 300 });
    expect(result).toMatchObject({ acknowledged: 1, expected: 2 });
    expect(ks1.state().halted).toBe(true);
    expect(ks2.state().halted).toBe(false);
    expect(refused).toEqual(['not_operator']);
  });

  it('kill - a tampered kill record (one signature bit) is refused by a joiner, which runs', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const op = await operator(mesh, opKey);
    await op.kill();
    const nc = await nats.connect();
    const kv = await new Kvm(nc).open(meshBuckets(mesh).kill);
    const entry = await kv.get(STATE_KEY);
    await kv.put(STATE_KEY, flipBit(entry!.value, 33 * 8 + 1));
    const ks = killSwitch({ operators: [opKey.did] });
    const refused: ControlRefusal[] = [];
    ks.on('refused', (r) => refused.push(r));
    const agent = await nats.join({ mesh, name: 'joiner', extensions: [ks] });
    expect(refused).toMatchObject([{ reason: 'bad_signature', subject: `kv:${meshBuckets(mesh).kill}/state` }]);
    expect(ks.state()).toMatchObject({ seq: 0, halted: false });
    expect(() => agent.send(agent.did, 'hello')).not.toThrow();
  });

  it('kill - a kill with a bad signature is refused `bad_signature` and halts nothing', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a] = await members(mesh, opKey, 1);
    const refused: ControlRefusal[] = [];
    a!.ks.on('refused', (r) => refused.push(r));
    const sub = meshSubjects(mesh).broadcast('ctl', opKey.agentId);
    const { bytes } = signFrame(opKey, { sub, typ: CONTROL_TYPES.kill, data: { seq: 1, op: 'kill', all: true, agents: [] } });
    const nc = await nats.connect();
    nc.publish(sub, flipBit(bytes, 33 * 8 + 5)); // a bit of the signature
    await waitFor(() => refused.length === 1, 'the bad signature to be refused');
    expect(refused[0]).toMatchObject({ reason: 'bad_signature', subject: sub });
    expect(a!.ks.stats().refused).toEqual({ bad_signature: 1 });
    expect(a!.ks.state()).toMatchObject({ seq: 0, halted: false });
  });

  it('kill - replays: an old kill, an old kill after a revive, an old revive after a newer kill', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a] = await members(mesh, opKey, 1);
    const ctl = await capture(await nats.connect(), `tm.${mesh}.ctl.>`);
    const replayed: string[] = [];
    a!.ks.on('refused', (r) => {
      if (r.reason === 'replay') replayed.push(r.reason);
    });
    const op = await operator(mesh, opKey);
    const nc = await nats.connect();

    await op.kill(); // seq 1
    const kill1 = await ctl.next();
    nc.publish(kill1.subject, kill1.data); // an old kill replayed while it is in force
    await waitFor(() => replayed.length === 1, 'the exact replay to be refused');
    await op.revive(); // seq 2
    const revive2 = await ctl.next();
    nc.publish(kill1.subject, kill1.data); // an old kill replayed after the revive
    await waitFor(() => replayed.length === 2, 'the old kill to be refused after the revive');
    expect(a!.ks.state()).toMatchObject({ seq: 2, halted: false });
    await op.kill(); // seq 3
    nc.publish(revive2.subject, revive2.data); // an old revive replayed after a newer kill
    await waitFor(() => replayed.length === 3, 'the old revive to be refused after the kill');
    expect(a!.ks.state()).toMatchObject({ seq: 3, halted: true });
  });

  it('kill - the sequence orders on its own: old snapshots re-signed with fresh ids and times are refused `stale` or `replay`', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a] = await members(mesh, opKey, 1);
    const refused: string[] = [];
    a!.ks.on('refused', (r) => refused.push(r.reason));
    const op = await operator(mesh, opKey);
    await op.kill(); // seq 1
    await op.revive(); // seq 2
    // The replay memory and notBefore cannot help here: these are new frames (an operator with a stale counter).
    const nc = await nats.connect();
    const sub = meshSubjects(mesh).broadcast('ctl', opKey.agentId);
    nc.publish(sub, signFrame(opKey, { sub, typ: CONTROL_TYPES.kill, data: { seq: 1, op: 'kill', all: true, agents: [] } }).bytes);
    nc.publish(sub, signFrame(opKey, { sub, typ: CONTROL_TYPES.kill, data: { seq: 2, op: 'kill', all: true, agents: [] } }).bytes);
    await waitFor(() => refused.length === 2, 'both to be refused');
    expect(refused).toEqual(['stale', 'replay']);
    expect(a!.ks.state()).toMatchObject({ seq: 2, halted: false });
    // a joiner reads seq 2 from the record; an old kill re-signed afterwards is stale for it too
    const ks = killSwitch({ operators: [opKey.did] });
    await nats.join({ mesh, name: 'joiner', extensions: [ks] });
    const late: string[] = [];
    ks.on('refused', (r) => late.push(r.reason));
    nc.publish(sub, signFrame(opKey, { sub, typ: CONTROL_TYPES.kill, data: { seq: 1, op: 'kill', all: true, agents: [] } }).bytes);
    await waitFor(() => late.length === 1, 'the joiner to refuse it');
    expect(late).toEqual(['stale']);
    expect(ks.state()).toMatchObject({ seq: 2, halted: false, source: 'record' });
  });

  it('kill - malformed or inconsistent control data from an operator is refused `bad_control`', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a] = await members(mesh, opKey, 1);
    const refused: string[] = [];
    a!.ks.on('refused', (r) => refused.push(r.reason));
    const nc = await nats.connect();
    const sub = meshSubjects(mesh).broadcast('ctl', opKey.agentId);
    const bad = [
      { typ: CONTROL_TYPES.kill, data: { seq: 5, op: 'kill', all: false, agents: [] } }, // a kill that kills nobody
      { typ: CONTROL_TYPES.kill, data: { seq: 5, op: 'revive', all: false, agents: [] } }, // op differs from typ
      { typ: CONTROL_TYPES.kill, data: { seq: 0, op: 'kill', all: true, agents: [] } },
      { typ: CONTROL_TYPES.kill, data: { seq: 5, op: 'kill', all: true, agents: ['not-an-id'] } },
      { typ: 'tm.other', data: { seq: 5, op: 'kill', all: true, agents: [] } },
    ];
    for (const f of bad) nc.publish(sub, signFrame(opKey, { sub, ...f }).bytes);
    await waitFor(() => refused.length === bad.length, 'every malformed frame to be refused');
    expect(new Set(refused)).toEqual(new Set(['bad_control']));
    expect(a!.ks.state().seq).toBe(0);
  });
});

describe('kill - under a flood', () => {
  it('kill - a flood of frames from fresh keys (which spends the verification budget for unknown keys) does not make an agent drop a kill', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a] = await members(mesh, opKey, 1);
    const overloaded = rejections(a!.agent, 'overloaded');
    const frames: Array<{ sub: string; bytes: Uint8Array }> = [];
    for (let k = 0; k < 200; k++) {
      const key = generateKey();
      const sub = meshSubjects(mesh).message(a!.agent.agentId, key.agentId);
      for (let i = 0; i < 50; i++) frames.push({ sub, bytes: signFrame(key, { sub, typ: 'flood', aud: a!.agent.did, data: i }).bytes });
    }
    const nc = await nats.connect();
    let next = 0;
    const flood = setInterval(() => {
      for (let i = 0; i < 200 && next < frames.length; i++, next++) nc.publish(frames[next]!.sub, frames[next]!.bytes);
    }, 10);
    try {
      await waitFor(() => overloaded.length > 100, 'the flood to spend the budget');
      const op = await operator(mesh, opKey);
      const result = await op.kill();
      expect(result).toMatchObject({ acknowledged: 1, missing: [] });
      expect(a!.ks.state().halted).toBe(true);
    } finally {
      clearInterval(flood);
    }
  });
});

describe('kill - targeted', () => {
  it('kill - a targeted kill halts one agent, the others refuse its frames, and a revive restores traffic', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a, b, c] = await members(mesh, opKey, 3);
    for (const m of [a, b, c]) m!.agent.handle('echo', (d) => d);
    await expect(a!.agent.request(b!.agent.did, 'echo', 1)).resolves.toBe(1);
    const op = await operator(mesh, opKey);
    const result = await op.kill({ agent: b!.agent.did });
    expect(result).toMatchObject({ expected: 1, acknowledged: 1, missing: [], target: b!.agent.did, states: { halted: 1 } });
    expect(b!.ks.state().halted).toBe(true);
    expect(a!.ks.state()).toMatchObject({ halted: false, killed: [b!.agent.did] });
    expect(a!.ks.isKilled(b!.agent.did)).toBe(true);
    expect(a!.ks.isBlocked(c!.agent.did)).toBeUndefined();
    // b cannot send; a fails fast addressing b; a and c still talk
    expect(() => b!.agent.send(a!.agent.did, 'echo', 1)).toThrow(KilledError);
    await expect(a!.agent.request(b!.agent.did, 'echo', 1)).rejects.toMatchObject({ code: 'killed', scope: 'peer' });
    await expect(a!.agent.request(c!.agent.did, 'echo', 2)).resolves.toBe(2);
    // frames b's key signs anyway (a raw publish, as a rogue b would) are refused `killed` by the others, blamed on b
    const refused = rejections(c!.agent, 'killed');
    const nc = await nats.connect();
    const sub = meshSubjects(mesh).message(c!.agent.agentId, b!.agent.agentId);
    nc.publish(sub, signFrame(b!.agent.key, { sub, typ: 'echo', aud: c!.agent.did, data: 'rogue', iat: Date.now() + 5_000 }).bytes);
    await waitFor(() => refused.length === 1, 'c to refuse b');
    expect(refused[0]).toMatchObject({ blame: 'signer', signer: b!.agent.did });
    // revive restores traffic
    const revived = await op.revive({ agent: b!.agent.did });
    expect(revived).toMatchObject({ acknowledged: 1, states: { running: 1 } });
    await expect(a!.agent.request(b!.agent.did, 'echo', 3)).resolves.toBe(3);
    await expect(b!.agent.request(c!.agent.did, 'echo', 4)).resolves.toBe(4);
  });

  it('kill - a pending request to a peer that is then halted fails at once with KilledError', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const [a, b] = await members(mesh, opKey, 2);
    let started = false;
    b!.agent.handle('hang', () => {
      started = true;
      return new Promise(() => {});
    });
    const pending = a!.agent.request(b!.agent.did, 'hang', null, { timeoutMs: 20_000 }).catch((e: unknown) => e);
    await waitFor(() => started, 'the handler to start');
    const op = await operator(mesh, opKey);
    const t0 = Date.now();
    await op.kill({ agent: b!.agent.did });
    expect(await pending).toMatchObject({ name: 'KilledError', scope: 'peer', agent: b!.agent.did });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
