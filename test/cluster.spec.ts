/**
 * The whole mesh on a real 3-node nats-server cluster (routes on loopback,
 * clustered JetStream, R3 state chosen by replicasFor): one node SIGKILLed
 * mid-traffic, the node coming back, a broker and the audit restarted, every
 * node restarted, and a stalled consumer. One cluster and one mesh for the
 * file: each test continues where the previous one left the mesh, so state
 * written early (scores, kill state, audit) is checked after later faults.
 * Figures are printed (`cluster figures:`), never asserted against a clock.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { captureStreamName, openLogFile, queryLog, startAudit, verifyLog, type AuditService } from '@trustmesh/audit';
import { type Broker, createBroker } from '@trustmesh/broker';
import { type Agent, joinMesh, replicasFor } from '@trustmesh/client';
import { createOperator, type KillSwitch, killSwitch, type Operator } from '@trustmesh/kill';
import { type AgentKey, generateKey, meshBuckets, meshSubjects, signFrame, TrustMeshError } from '@trustmesh/protocol';
import { CLUSTER_CLIENT_OPTIONS, uniqueMesh, waitFor, withNatsCluster } from '@trustmesh/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A stalled client is cut off after 2 s of blocked writes (default 10 s).
const fx = withNatsCluster({ extraConfig: 'write_deadline: "2s"' });
const mesh = uniqueMesh('c');
const figures: Record<string, unknown> = {};

/** A mesh member with its own connection pinned to one node first (the others are fallbacks). */
interface Member {
  agent: Agent;
  nc: NatsConnection;
  ks: KillSwitch;
  node: number;
  reconnects: number[];
}

const opKey = generateKey();
const auditKey = generateKey();
const brokerKeys = [generateKey(), generateKey()];
const badKey = generateKey(); // the agent whose score the brokers lower
let dir: string;
let admin: NatsConnection;
let operator: Operator;
let audit: AuditService;
let brokers: Broker[] = [];
const workers: Member[] = [];
const requesters: Member[] = [];
const others: NatsConnection[] = [];
/** Handler executions per request id: an id executed twice is a duplicate. */
const executions = new Map<string, number>();
let reportSeq = 0;

const pinned = (node: number): string[] => [fx.urls[node]!, ...fx.urls.filter((_, i) => i !== node)];

async function member(name: string, node: number): Promise<Member> {
  const nc = await connect({ ...CLUSTER_CLIENT_OPTIONS, servers: pinned(node), noRandomize: true, name });
  const reconnects: number[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') reconnects.push(performance.now());
  })();
  const ks = killSwitch({ operators: [opKey.did] });
  const agent = await joinMesh({ mesh, name, connection: nc, extensions: [ks], requestTimeoutMs: 2_000 });
  return { agent, nc, ks, node, reconnects };
}

const startAuditService = async (): Promise<AuditService> => {
  const nc = await connect({ ...CLUSTER_CLIENT_OPTIONS, servers: fx.urls, name: 'audit' });
  others.push(nc);
  return startAudit({
    mesh,
    key: auditKey,
    connection: nc,
    path: join(dir, 'audit.log'),
    capture: { replicas: replicasFor(nc) },
    checkpointIntervalMs: 1_000,
    workers: 0,
  });
};

const startBroker = (key: AgentKey): Promise<Broker> =>
  createBroker({
    key,
    mesh,
    servers: fx.urls,
    connectionOptions: CLUSTER_CLIENT_OPTIONS,
    declarationMarginMs: 0,
    presenceRewards: false,
    policy: { penalties: { events: { protocol_violation: { delta: 1, growth: 1, max: 1 } } } },
  });

/** A frame badKey signed without `aud`: a protocol violation any receiver can prove. Reported to `broker` by `reporter`. */
function reportViolation(reporter: Agent, broker: Broker, key = badKey): void {
  const subject = meshSubjects(mesh).message(reporter.agentId, key.agentId);
  const { bytes } = signFrame(key, { sub: subject, typ: 'hello', data: reportSeq++ });
  reporter.send(broker.did, 'trust.report', { v: 1, claim: 'protocol', frames: [{ subject, frame: bytes }] });
}

/** The JetStream API over plain requests (the root package has no JetStream client); throws on an API error. */
async function jsApi<T>(nc: NatsConnection, subject: string, body: unknown = {}): Promise<T> {
  // Right after a node loss the API may not answer while leaders are elected: a few tries, 5 s each.
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = (await nc.request(`$JS.API.${subject}`, JSON.stringify(body), { timeout: 5_000 })).json<T & { error?: unknown }>();
      if (reply.error !== undefined) throw new Error(`${subject}: ${JSON.stringify(reply.error)}`);
      return reply;
    } catch (err) {
      if (attempt >= 4 || !(err instanceof Error) || err.name !== 'TimeoutError') throw err;
    }
  }
}

interface StreamInfo {
  config: { num_replicas: number };
  state: { last_seq: number };
  cluster?: { leader?: string; replicas?: { name: string; current: boolean; offline?: boolean; lag?: number }[] };
}
const streamInfo = (name: string, nc = admin) => jsApi<StreamInfo>(nc, `STREAM.INFO.${name}`);

/**
 * Reports one violation at a time, alternating brokers, each applied before the next: two
 * brokers share the bucket, but never write the same key at the same moment (see the
 * `concurrent writers` test for why that matters on nats-server 2.9.10).
 */
async function violations(n: number, via: Broker[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const broker = via[i % via.length]!;
    const applied = broker.stats().applied;
    reportViolation(requesters[i % requesters.length]!.agent, broker);
    await waitFor(() => broker.stats().applied === applied + 1, `violation ${i} applied`, 10_000);
    await broker.idle();
  }
}

/** The trust bucket's entry for `key` (a KV read: the last message on its key), read through `nc`. */
const storedVersion = async (nc = admin, key = badKey): Promise<{ version: number; score: number } | undefined> => {
  const bucket = meshBuckets(mesh).trust;
  const got = await jsApi<{ message: { data: string } }>(nc, `STREAM.MSG.GET.KV_${bucket}`, {
    last_by_subj: `$KV.${bucket}.${key.agentId}`,
  }).catch(() => undefined);
  if (got === undefined) return undefined;
  const stored = JSON.parse(Buffer.from(got.message.data, 'base64').toString()) as { state: { version: number; score: number } };
  return { version: stored.state.version, score: Math.round(stored.state.score) };
};

/** Every stream and bucket of the mesh, with its replicas all current. */
const meshStreams = () => [
  captureStreamName(mesh),
  `KV_${meshBuckets(mesh).presence}`,
  `KV_${meshBuckets(mesh).trust}`,
  `KV_${meshBuckets(mesh).kill}`,
];

async function replicasCurrent(): Promise<boolean> {
  for (const name of meshStreams()) {
    const info = await streamInfo(name).catch(() => undefined);
    const replicas = info?.cluster?.replicas ?? [];
    if (info?.cluster?.leader === undefined || replicas.length !== 2 || replicas.some((r) => !r.current || r.offline)) return false;
  }
  return true;
}

interface Traffic {
  ok: number;
  /** performance.now() of each success. */
  okAt: number[];
  failed: Record<string, number>;
  unclear: unknown[];
  stop(): Promise<void>;
}

/** Every requester asks a worker in turn (round robin over the nodes) until stopped. */
function traffic(tag: string): Traffic {
  let running = true;
  const t: Traffic = { ok: 0, okAt: [], failed: {}, unclear: [], stop: async () => undefined };
  const loops = requesters.map(async (r, ri) => {
    for (let n = 0; running; n++) {
      const w = workers[(ri + n) % workers.length]!;
      const id = `${tag}-${ri}-${n}`;
      try {
        const answer = await r.agent.request<string>(w.agent.did, 'work', { id }, { timeoutMs: 1_000 });
        if (answer === id) {
          t.ok++;
          t.okAt.push(performance.now());
        } else t.unclear.push(new Error(`wrong answer ${answer} for ${id}`));
      } catch (err) {
        if (err instanceof TrustMeshError) t.failed[`${err.name}:${err.code}`] = (t.failed[`${err.name}:${err.code}`] ?? 0) + 1;
        else t.unclear.push(err);
        await sleep(20);
      }
    }
  });
  t.stop = async () => {
    running = false;
    await Promise.all(loops);
  };
  return t;
}

/** Polls an async condition until it holds; throws naming what never happened, with the last value seen. */
async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(50);
  }
}

const scoreIs = (version: number) =>
  until(storedVersion, (v) => v?.version === version, `trust version ${version}`).then((v) =>
    expect(v).toEqual({ version, score: 500 - version }),
  );

const duplicates = () => [...executions.values()].filter((n) => n > 1).length;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trustmesh-cluster-test-'));
  admin = await connect({ ...CLUSTER_CLIENT_OPTIONS, servers: fx.urls, name: 'admin' });
  audit = await startAuditService();
  operator = await createOperator({ key: opKey, mesh, servers: fx.urls, connectionOptions: CLUSTER_CLIENT_OPTIONS });
  brokers = [await startBroker(brokerKeys[0]!), await startBroker(brokerKeys[1]!)];
  for (let i = 0; i < 3; i++) {
    const w = await member(`worker-${i}`, i);
    w.agent.handle('work', (data) => {
      const id = (data as { id: string }).id;
      executions.set(id, (executions.get(id) ?? 0) + 1);
      return id;
    });
    workers.push(w);
    requesters.push(await member(`requester-${i}`, i));
  }
}, 60_000);

afterAll(async () => {
  console.log(`cluster figures: ${JSON.stringify(figures)}`);
  for (const m of [...workers, ...requesters]) await m.agent.leave().catch(() => undefined);
  for (const m of [...workers, ...requesters]) await m.nc.close().catch(() => undefined);
  await Promise.all(brokers.map((b) => b.close().catch(() => undefined)));
  await operator?.close().catch(() => undefined);
  await audit?.stop().catch(() => undefined);
  for (const nc of [admin, ...others]) await nc?.close().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

// The node-fault scenarios are flaky on the 2-core CI machines (a KV write can find no responder while R3 leaders are elected after a SIGKILL): they run by hand with TRUSTMESH_CLUSTER_FAULTS=1.
describe.skipIf(process.env.CI === 'true' && process.env.TRUSTMESH_CLUSTER_FAULTS !== '1')('cluster', () => {
  it('replication - every bucket and stream of the mesh is R3 on a 3-node cluster', async () => {
    expect(replicasFor(admin)).toBe(3);
    for (const name of meshStreams()) expect((await streamInfo(name)).config.num_replicas, name).toBe(3);
  });

  it('node loss - one node SIGKILLed mid-traffic: clients fail over, requests complete or fail clearly, none runs twice, kill/revive, scores and audit intact', async () => {
    // Scores before the fault: ten violations through each broker.
    await violations(20, brokers);
    await scoreIs(20);

    // Kill the node that leads the capture stream: the hardest one to lose.
    const leader = (await streamInfo(captureStreamName(mesh))).cluster?.leader;
    const victim = Math.max(
      0,
      fx.cluster.nodes.findIndex((n) => n.name === leader),
    );
    const load = traffic('loss');
    await sleep(1_000);
    const before = load.ok;
    const onVictim = [...workers, ...requesters].filter((m) => m.node === victim);
    const t0 = performance.now();
    await fx.kill(victim);
    await waitFor(() => onVictim.every((m) => m.reconnects.length > 0), 'clients of the killed node reconnected', 20_000, 10);
    const reconnectMs = onVictim.map((m) => Math.round(m.reconnects[0]! - t0));
    const afterLoss = load.ok;
    await sleep(3_000); // past the request timeout (1 s): requests lost with the node have failed by then
    await load.stop();
    // The longest time without any successful request around the loss.
    const around = load.okAt.filter((at) => at > t0 - 1_000);
    const longestPauseMs = Math.round(Math.max(0, ...around.slice(1).map((at, i) => at - around[i]!)));
    figures.nodeLoss = {
      victim: fx.cluster.nodes[victim]!.name,
      reconnectMs,
      requestsOkBeforeKill: before,
      requestsOk: load.ok,
      requestsOkAfterReconnect: load.ok - afterLoss,
      requestsFailed: load.failed,
      longestPauseMs,
      duplicatesExecuted: duplicates(),
    };
    expect(load.unclear).toEqual([]);
    expect(load.ok - afterLoss).toBeGreaterThan(0); // traffic flows again after the loss
    for (const code of Object.keys(load.failed)) expect(code).toBe('RequestTimeoutError:timeout');
    expect(duplicates()).toBe(0);

    // Kill and revive reach every agent, the ones that failed over included.
    const killed = await operator.kill({ timeoutMs: 2_000 });
    await waitFor(() => [...workers, ...requesters].every((m) => m.ks.state().halted), 'every agent halted', 5_000);
    const revived = await operator.revive({ timeoutMs: 2_000 });
    await waitFor(() => [...workers, ...requesters].every((m) => !m.ks.state().halted), 'every agent revived', 5_000);
    // The brokers are on the mesh without a kill switch: they are the only ones that may not answer.
    const brokerDids = brokers.map((b) => b.did);
    figures.killAfterLoss = {
      acknowledged: killed.acknowledged,
      expected: killed.expected,
      missing: killed.missing.length,
      p99Ms: killed.latencyMs.p99,
    };
    figures.reviveAfterLoss = { acknowledged: revived.acknowledged, expected: revived.expected, missing: revived.missing.length };
    expect(killed.missing.filter((did) => !brokerDids.includes(did))).toEqual([]);
    expect(revived.missing.filter((did) => !brokerDids.includes(did))).toEqual([]);

    // Scores intact, and still written with a node down (two of three replicas).
    await scoreIs(20);
    await violations(1, [brokers[0]!]);
    await scoreIs(21);

    // The audit read everything the capture stream holds, with no gap.
    const last = (await streamInfo(captureStreamName(mesh))).state.last_seq;
    await audit.caughtUp(60_000);
    figures.auditAfterLoss = {
      gaps: audit.stats().gaps,
      missing: audit.stats().missing,
      outages: audit.stats().outages,
      lastSeq: audit.stats().lastSeq,
      captured: last,
    };
    expect(audit.stats().gaps).toBe(0);
    expect(audit.stats().lastSeq).toBeGreaterThanOrEqual(last); // its own checkpoints may come after
  }, 120_000);

  it('node back - the killed node restarts on its store and every replica catches up', async () => {
    const down = fx.cluster.nodes.findIndex((n) => !n.running);
    expect(down).toBeGreaterThanOrEqual(0);
    const t0 = performance.now();
    await fx.restart(down);
    let current = false;
    const deadline = Date.now() + 30_000;
    while (!(current = await replicasCurrent()) && Date.now() < deadline) await sleep(100);
    figures.nodeBack = { node: fx.cluster.nodes[down]!.name, caughtUpMs: Math.round(performance.now() - t0) };
    expect(current).toBe(true);
    // Read through the restarted node alone: the state it holds again.
    const only = await connect({ servers: fx.urls[down]! });
    others.push(only);
    expect(await storedVersion(only)).toEqual({ version: 21, score: 479 });
  });

  it('broker and audit restarted - the other broker carries on without losing an update; the audit resumes from its durable consumer', async () => {
    await brokers[0]!.close();
    const survivor = brokers[1]!;
    await violations(10, [survivor]);
    brokers[0] = await startBroker(brokerKeys[0]!);
    await violations(5, brokers);
    await scoreIs(36);

    await audit.stop();
    const load = traffic('audit-down');
    await sleep(1_500);
    await load.stop();
    audit = await startAuditService();
    const last = (await streamInfo(captureStreamName(mesh))).state.last_seq;
    await audit.caughtUp(60_000);
    figures.auditRestart = { requestsWhileDown: load.ok, gaps: audit.stats().gaps, lastSeq: audit.stats().lastSeq, captured: last };
    expect(audit.stats().gaps).toBe(0);
    expect(audit.stats().lastSeq).toBeGreaterThanOrEqual(last); // its own checkpoints may come after
    expect(duplicates()).toBe(0);
  }, 60_000);

  it('all nodes restarted - kill state, scores and the audit survive', async () => {
    // A sticky targeted kill, in force across the restart.
    const target = workers[2]!;
    await operator.kill({ agent: target.agent.did, timeoutMs: 5_000 });
    await waitFor(() => target.ks.state().halted, 'target halted', 5_000);
    const seq = (await operator.state()).seq;

    const t0 = performance.now();
    await Promise.all(fx.cluster.nodes.map((n) => fx.cluster.stopNode(n.index)));
    await Promise.all(fx.cluster.nodes.map((n) => fx.restart(n.index)));
    let current = false;
    const deadline = Date.now() + 30_000;
    while (!(current = await replicasCurrent()) && Date.now() < deadline) await sleep(100);
    const all = [...workers, ...requesters];
    await waitFor(() => all.every((m) => !m.nc.isClosed() && m.nc.info !== undefined), 'clients back', 20_000);
    figures.allRestarted = { backMs: Math.round(performance.now() - t0) };
    expect(current).toBe(true);
    const step = (what: string) => console.log(`all restarted: ${what} at ${Math.round(performance.now() - t0)} ms`);

    await scoreIs(36);
    step('scores read');
    // Right after a full restart a KV read (direct get) can time out for a moment: measured.
    const view = await until(
      () => operator.state().catch((err: Error) => ({ seq: -1, error: err.message })),
      (v) => v.seq >= 0,
      'the kill state readable',
      20_000,
    );
    figures.allRestarted = { ...(figures.allRestarted as object), killStateReadableMs: Math.round(performance.now() - t0) };
    expect(view.seq).toBe(seq);
    step('kill state read');
    // A newcomer learns the kill from the bucket before it can send.
    const late = await member('late', 0);
    expect(late.ks.isKilled(target.agent.did)).toBe(true);
    others.push(late.nc);
    await late.agent.leave();
    await operator.revive({ agent: target.agent.did, timeoutMs: 5_000 });
    await waitFor(() => !target.ks.state().halted, 'target revived', 5_000);
    step('revived');

    // Traffic again, then the audit: every captured message recorded, no gap.
    const load = traffic('after-restart');
    await sleep(1_500);
    await load.stop();
    expect(load.ok).toBeGreaterThan(0);
    step('traffic');
    const last = (await streamInfo(captureStreamName(mesh))).state.last_seq;
    const t1 = performance.now();
    await audit.caughtUp(45_000);
    figures.allRestarted = { ...(figures.allRestarted as object), auditCaughtUpAfterTrafficMs: Math.round(performance.now() - t1) };
    step('audit caught up');
    expect(audit.stats().gaps).toBe(0);
    expect(audit.stats().lastSeq).toBeGreaterThanOrEqual(last); // its own checkpoints may come after
    figures.afterAllRestarted = { requestsOk: load.ok, failed: load.failed, outages: audit.stats().outages };
  }, 90_000);

  it('slow consumer - a stalled agent holds nobody up, and what it missed is counted', async () => {
    // node itself runs the agent (tsx as a loader, not its CLI, which would be a second process): SIGSTOP stops the agent.
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const script = fileURLToPath(new URL('./cluster-stalled-agent.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', tsx, script, mesh, pinned(1).join(',')], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let buffer = '';
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      lines.push(...parts);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor(() => lines.length > 0, `the stalled agent joining (${stderr})`, 20_000);
      const stalledDid = lines.shift()!;
      const sender = requesters[0]!.agent;
      await waitFor(() => sender.peers().some((p) => p.did === stalledDid), 'sender knows the stalled agent', 10_000);
      const slowBefore = await slowConsumers(1);

      child.kill('SIGSTOP');
      const load = traffic('stall');
      const note = 'x'.repeat(4_000);
      const sent = 5_000; // ~20 MB: more than the socket buffers hold
      for (let i = 0; i < sent; i++) {
        sender.send(stalledDid, 'note', note);
        if (i % 200 === 0) await sleep(1);
      }
      await requesters[0]!.nc.flush();
      await sleep(3_000); // past write_deadline
      const slowAfter = await slowConsumers(1);
      await load.stop();
      child.kill('SIGCONT');

      // Resumed, it finds itself cut off and reconnects; then it says what it got.
      let report: { received: number; events: Record<string, number> } = { received: -1, events: {} };
      const deadline = Date.now() + 15_000;
      while (!(report.events.reconnect! >= 1) && Date.now() < deadline) {
        child.stdin.write('count\n');
        await waitFor(() => lines.length > 0, 'the stalled agent answering', 15_000);
        report = JSON.parse(lines.shift()!) as typeof report;
        if (!(report.events.reconnect! >= 1)) await sleep(200);
      }
      await audit.caughtUp(30_000);
      const log = await openLogFile(join(dir, 'audit.log'));
      let captured = 0;
      for await (const r of queryLog(log, { type: 'note' })) if (r.subject.includes(`.msg.${stalledDid.slice(8)}.`)) captured++;
      figures.slowConsumer = {
        sent,
        received: report.received,
        missed: sent - report.received,
        capturedByAudit: captured,
        serverSlowConsumerEvents: slowAfter - slowBefore,
        stalledClientEvents: report.events,
        othersOkDuringStall: load.ok,
        othersFailedDuringStall: load.failed,
      };
      expect(load.ok).toBeGreaterThan(0);
      expect(load.unclear).toEqual([]);
      expect(slowAfter - slowBefore).toBeGreaterThan(0); // the server counted it
      expect(report.received).toBeLessThan(sent);
      expect(captured).toBe(sent); // every missed message is in the audit, not silently gone
    } finally {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('concurrent writers - two brokers updating one score at once on R3 (figure only: nats-server 2.9.10 bug)', async () => {
    // nats-server < 2.9.21 checks Nats-Expected-Last-Subject-Sequence before the Raft proposal
    // only (nats-io/nats-server#4320), so on a clustered stream two compare-and-set writes with
    // the same expected revision can both succeed, and a broker's update is lost. Counted here;
    // docs/decisions/0017-replication.md says what to run instead.
    const key = generateKey();
    const applied = () => brokers[0]!.stats().applied + brokers[1]!.stats().applied;
    const before = applied();
    const n = 40;
    for (let i = 0; i < n; i++) reportViolation(requesters[i % 3]!.agent, brokers[i % 2]!, key);
    await waitFor(() => applied() === before + n, `${n} concurrent reports applied`, 20_000);
    await Promise.all(brokers.map((b) => b.idle()));
    const stored = await storedVersion(admin, key);
    figures.concurrentWriters = { applied: n, storedVersion: stored?.version, lostUpdates: n - (stored?.version ?? 0) };
    expect(stored?.version).toBeLessThanOrEqual(n);
  });

  it('audit - the chain over every fault verifies', async () => {
    await audit.stop();
    const log = await openLogFile(join(dir, 'audit.log'));
    const report = await verifyLog(log, { trusted: audit.did });
    figures.auditVerify = { ok: report.ok, records: report.records, outages: report.outages, firstBad: report.firstBad };
    expect(report.ok).toBe(true);
    audit = await startAuditService();
  });
});

async function slowConsumers(node: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${fx.cluster.nodes[node]!.httpPort}/varz`);
  return ((await response.json()) as { slow_consumers: number }).slow_consumers;
}
