/**
 * Trust broker benchmark (issue 7): evidence throughput and the time from a
 * violation to enforcement at 100 clients. Prints a table, or JSON with --json.
 *
 *   npx tsx bench/trust-enforcement.ts [--reports 4000] [--clients 100] [--rounds 10] [--json]
 *
 * One private nats-server (JetStream on a temp store), one broker, all in this
 * process (so the clients' work shares the broker's core: a pessimistic setup).
 *
 * evidence throughput: one reporter agent sends reports, at most 48 unstarted at
 *   a time (the dispatch queue holds 64 per sender), measured until the broker has
 *   checked them all:
 *   - unattributed: a forgery claiming X (re-verified: bad signature, counted, no write);
 *   - penalty: a protocol violation (msg without aud) of one of 500 DIDs, each
 *     re-verified, scored, written with compare-and-set, signed and pushed.
 *   Each report costs the broker two Ed25519 verifies (the report, the evidence).
 *   - checker only: the same re-verification and blame rule without NATS or writes.
 * enforcement: 100 agents with trustGuard on their own connections, and one
 *   receiver R (trustGuard, reportViolations). Per round, a fresh X sends R an
 *   equivocating pair twice; the second pair takes X below 300. Measured from
 *   the publish of the second frame of that pair (R refuses it, reports both
 *   frames, the broker checks and writes, pushes a signed update) until every
 *   one of the 100 clients holds X as untrusted (its inbound guard refuses X's
 *   frames from that moment: the check is a cache read).
 */
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { createBroker, EvidenceChecker } from '@trustmesh/broker';
import { type Agent, joinMesh } from '@trustmesh/client';
import { startNatsServer } from '@trustmesh/embedded-nats';
import { type AgentKey, generateKey, meshSubjects, nodeEd25519, signFrame, signingInput } from '@trustmesh/protocol';
import { parseTrustReport, type TrustGuard, trustGuard } from '@trustmesh/trust';

const { values: args } = parseArgs({
  options: {
    reports: { type: 'string', default: '4000' },
    clients: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/trust-enforcement.ts [--reports 4000] [--clients 100] [--rounds 10] [--json]');
  process.exit(0);
}
const REPORTS = Number(args.reports);
const CLIENTS = Number(args.clients);
const ROUNDS = Number(args.rounds);
const log = (s: string) => {
  if (!args.json) console.error(s);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Single-core Ed25519 verifies per second (node:crypto), same process, same run: the reference for the rates below. */
function verifyRate(): number {
  const key = generateKey();
  const frames = Array.from({ length: 256 }, (_, i) => signFrame(key, { sub: `tm.b.msg.x.${key.agentId}`, typ: 't', data: i }).bytes);
  const verify = nodeEd25519.prepare(key.publicKey);
  const inputs = frames.map((f) => signingInput(f.subarray(97)));
  const sigs = frames.map((f) => f.subarray(33, 97));
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 1000) for (let i = 0; i < 256; i++, n++) verify(inputs[i]!, sigs[i]!);
  return n / ((performance.now() - start) / 1000);
}
const verifiesPerSecond = verifyRate();
log(`Ed25519 verify: ${verifiesPerSecond.toFixed(0)}/s`);

const server = await startNatsServer();
const mesh = 'trustbench';
const subjects = meshSubjects(mesh);
const agents: Agent[] = [];
try {
  const broker = await createBroker({ key: generateKey(), mesh, servers: server.url, presenceRewards: false });
  const brokers = [broker.did];
  const reporter = await joinMesh({ mesh, name: 'reporter', servers: server.url });
  agents.push(reporter);
  const to = { did: reporter.did, agentId: reporter.agentId };

  // --- evidence throughput ---------------------------------------------------
  const offenders: AgentKey[] = Array.from({ length: 500 }, () => generateKey());
  async function throughput(kind: 'unattributed' | 'penalty'): Promise<{ reports: number; seconds: number; perSecond: number }> {
    const bodies = Array.from({ length: REPORTS }, (_, i) => {
      const x = offenders[i % offenders.length]!;
      const sub = subjects.message(to.agentId, x.agentId);
      const { bytes } = signFrame(x, { sub, typ: 'hello', data: i, ...(kind === 'unattributed' && { aud: to.did }) });
      if (kind === 'unattributed') bytes[120] = bytes[120]! ^ 1; // a forgery claiming x
      return {
        v: 1,
        claim: kind === 'unattributed' ? 'rejection' : 'protocol',
        reason: 'bad_signature',
        frames: [{ subject: sub, frame: bytes }],
      };
    });
    const base = broker.stats().reports;
    const start = performance.now();
    for (let i = 0; i < bodies.length; i++) {
      while (i - (broker.stats().reports - base) >= 48) await sleep(0);
      reporter.send(broker.did, 'trust.report', bodies[i]);
    }
    await until(() => broker.stats().reports - base === bodies.length, 'reports read').catch((e) => {
      console.error(broker.stats(), broker.agent.stats());
      throw e;
    });
    await broker.idle();
    const seconds = (performance.now() - start) / 1000;
    return { reports: bodies.length, seconds, perSecond: bodies.length / seconds };
  }
  // The check alone, in this process, no NATS: stateless re-verification, blame rule, findings.
  async function checkerOnly(): Promise<{ reports: number; seconds: number; perSecond: number }> {
    const checker = new EvidenceChecker();
    const reports = Array.from({ length: REPORTS }, (_, i) => {
      const x = offenders[i % offenders.length]!;
      const sub = subjects.message(to.agentId, x.agentId);
      const { bytes } = signFrame(x, { sub, typ: 'hello', data: i });
      const parsed = parseTrustReport({ v: 1, claim: 'protocol', frames: [{ subject: sub, frame: bytes }] });
      if (!parsed.ok) throw new Error(parsed.detail);
      return parsed.report;
    });
    const context = {
      mesh,
      reporter: reporter.did,
      now: Date.now(),
      windowMs: 30_000,
      secure: false,
      declaredAt: async () => undefined,
      declarationMarginMs: 0,
      capabilitiesOf: () => undefined,
      capture: undefined,
    };
    const start = performance.now();
    let attributed = 0;
    for (const r of reports) for (const f of await checker.check(r, context)) if (f.kind === 'attributed') attributed++;
    const seconds = (performance.now() - start) / 1000;
    if (attributed !== reports.length) throw new Error(`checker found ${attributed} of ${reports.length}`);
    return { reports: reports.length, seconds, perSecond: reports.length / seconds };
  }
  const checkOnly = await checkerOnly();
  log(`checker only: ${checkOnly.perSecond.toFixed(0)} reports/s`);
  const unattributed = await throughput('unattributed');
  log(`unattributed: ${unattributed.perSecond.toFixed(0)} reports/s`);
  const penalty = await throughput('penalty');
  log(`penalty: ${penalty.perSecond.toFixed(0)} reports/s`);
  const stats = broker.stats();

  // --- enforcement at N clients -----------------------------------------------
  const guards: TrustGuard[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const guard = trustGuard({ brokers });
    guards.push(guard);
    agents.push(await joinMesh({ mesh, name: `c${i}`, servers: server.url, extensions: [guard] }));
  }
  const receiverGuard = trustGuard({ brokers, reportViolations: true });
  const receiver = await joinMesh({ mesh, name: 'receiver', servers: server.url, extensions: [receiverGuard] });
  agents.push(receiver);
  const nc = await connect({ servers: server.url });
  log(`${CLIENTS} clients joined`);
  const samples: number[] = [];
  const firstPush: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const x = generateKey();
    const sub = subjects.message(receiver.agentId, x.agentId);
    const pair = (fill: number) => {
      const id = new Uint8Array(16).fill(fill + round * 2);
      return [1, 2].map((n) => signFrame(x, { sub, typ: 'hello', data: n, aud: receiver.did, id }).bytes);
    };
    const [a1, a2] = pair(1);
    const [b1, b2] = pair(2);
    nc.publish(sub, a1!);
    nc.publish(sub, b1!);
    await nc.flush();
    await sleep(20);
    // First offence: every client learns x's new score (still probationary).
    let t0 = performance.now();
    nc.publish(sub, a2!);
    await until(() => guards.every((g) => g.trustOf(x.did) < 500), 'first push everywhere');
    firstPush.push(performance.now() - t0);
    // Second offence: below 300 everywhere.
    t0 = performance.now();
    nc.publish(sub, b2!);
    await until(() => guards.every((g) => g.tierOf(x.did) === 'untrusted'), 'untrusted everywhere');
    samples.push(performance.now() - t0);
    log(`round ${round + 1}: ${samples.at(-1)!.toFixed(1)} ms`);
  }
  await nc.close();
  const sorted = [...samples].sort((a, b) => a - b);
  const result = {
    node: process.version,
    cpus: (await import('node:os')).cpus().length,
    verifiesPerSecond,
    evidence: {
      checkerOnly: { ...checkOnly, note: 'EvidenceChecker.check alone (one Ed25519 verify, blame rule), no NATS' },
      unattributed: { ...unattributed, note: 'forgery claiming X: re-verified, counted, no write' },
      penalty: { ...penalty, conflicts: stats.conflicts, note: 'protocol violation: re-verified, scored, CAS-written, signed, pushed' },
    },
    enforcement: {
      clients: CLIENTS,
      rounds: ROUNDS,
      ms: { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1)!, min: sorted[0]! },
      firstPushMs: {
        p50: quantile(
          [...firstPush].sort((a, b) => a - b),
          0.5,
        ),
      },
      samples,
    },
  };
  if (args.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log('\nTrust broker (one process, one nats-server on loopback)');
    console.log('| measure | value |');
    console.log('|---|---|');
    console.log(`| Ed25519 verify, one core (reference) | ${verifiesPerSecond.toFixed(0)} /s |`);
    console.log(`| evidence check alone (verify, blame rule; no NATS, no write) | ${checkOnly.perSecond.toFixed(0)} reports/s |`);
    console.log(`| evidence throughput, forgeries (verify x2, count) | ${unattributed.perSecond.toFixed(0)} reports/s |`);
    console.log(`| evidence throughput, penalties (verify x2, CAS write, sign x2, push) | ${penalty.perSecond.toFixed(0)} reports/s |`);
    console.log(`| violation -> all ${CLIENTS} clients refuse, p50 | ${result.enforcement.ms.p50.toFixed(1)} ms |`);
    console.log(`| violation -> all ${CLIENTS} clients refuse, p99 (of ${ROUNDS}) | ${result.enforcement.ms.p99.toFixed(1)} ms |`);
    console.log(`| violation -> all ${CLIENTS} clients refuse, max | ${result.enforcement.ms.max.toFixed(1)} ms |`);
  }
  await broker.close();
} finally {
  await Promise.all(agents.map((a) => a.leave().catch(() => undefined)));
  await server.stop();
}
