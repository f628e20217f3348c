/**
 * Kill propagation benchmark (DESIGN.md §10, issue 8): how long from the
 * operator's publish of a kill (or revive) until the last agent's signed
 * acknowledgement has arrived and verified at the operator?
 *
 *   npx tsx bench/kill-propagation.ts                 # table, 100 and 1,000 agents
 *   npx tsx bench/kill-propagation.ts --json          # one JSON object on stdout
 *   npx tsx bench/kill-propagation.ts --sizes 100 --rounds 20
 *
 * One private nats-server (JetStream on), all agents in this process on a few
 * shared connections (each agent: its own key, kill switch, verifier and
 * subscriptions), the operator on a connection of its own. After one warm-up
 * kill and revive, each round is a global kill then a global revive; every
 * operation must be acknowledged by every agent (the run fails otherwise).
 * Reported per size and operation: over the rounds, p50 and p99 of the
 * kill-to-last-ack time, and over all acknowledgements pooled, p50 and p99 of
 * the time to each ack. Times are from just before the publish to the arrival
 * of each ack (verification of the ack included in the operator's turn).
 * A benchmark, not a test: it prints numbers and exits 1 only if an operation
 * missed acknowledgements.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Agent, joinMesh } from '@trustmesh/client';
import { startNatsServer } from '@trustmesh/embedded-nats';
import { createOperator, killSwitch, type OperationResult } from '@trustmesh/kill';
import { generateKey } from '@trustmesh/protocol';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '100,1000' },
    rounds: { type: 'string', default: '10' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('Usage: npx tsx bench/kill-propagation.ts [--sizes 100,1000] [--rounds 10] [--json]');
  process.exit(0);
}
const sizes = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);

const percentile = (values: number[], p: number): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
};
const r1 = (n: number) => Math.round(n * 10) / 10;

interface OpStats {
  rounds: number;
  lastAck: { p50: number; p99: number; max: number };
  perAckP50: { p50: number; p99: number };
  perAckP99: { p50: number; p99: number };
}

interface SizeResult {
  agents: number;
  connections: number;
  joinMs: number;
  kill: OpStats;
  revive: OpStats;
}

function summarize(results: OperationResult[]): OpStats {
  const last = results.map((r) => r.latencyMs.max);
  const p50s = results.map((r) => r.latencyMs.p50);
  const p99s = results.map((r) => r.latencyMs.p99);
  return {
    rounds: results.length,
    lastAck: { p50: r1(percentile(last, 0.5)), p99: r1(percentile(last, 0.99)), max: r1(Math.max(...last)) },
    perAckP50: { p50: r1(percentile(p50s, 0.5)), p99: r1(percentile(p50s, 0.99)) },
    perAckP99: { p50: r1(percentile(p99s, 0.5)), p99: r1(percentile(p99s, 0.99)) },
  };
}

async function runSize(url: string, n: number): Promise<SizeResult> {
  const mesh = `bench${n}x${Date.now().toString(36)}`;
  const opKey = generateKey();
  const connections = Math.max(2, Math.min(8, Math.ceil(n / 125)));
  const ncs: NatsConnection[] = await Promise.all(Array.from({ length: connections }, () => connect({ servers: url })));
  const agents: Agent[] = [];
  const t0 = performance.now();
  const join = (i: number) =>
    joinMesh({ mesh, name: `a${i}`, connection: ncs[i % connections]!, extensions: [killSwitch({ operators: [opKey.did] })] });
  // One agent per connection first: agents joining concurrently on a connection before its
  // presence hub has opened the registry are not written to it (client, PresenceHub.attach).
  for (let i = 0; i < connections; i++) agents.push(await join(i));
  for (let i = connections; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, j) => join(i + j));
    agents.push(...(await Promise.all(batch)));
  }
  const joinMs = performance.now() - t0;
  const opNc = await connect({ servers: url });
  const operator = await createOperator({ key: opKey, mesh, connection: opNc, timeoutMs: 10_000 });
  const check = (r: OperationResult) => {
    if (r.acknowledged !== n || r.expected !== n) {
      throw new Error(`${r.op} seq ${r.seq}: ${r.acknowledged}/${r.expected} acknowledged of ${n}; missing ${r.missing.length}`);
    }
    return r;
  };
  check(await operator.kill());
  check(await operator.revive());
  const kills: OperationResult[] = [];
  const revives: OperationResult[] = [];
  for (let i = 0; i < rounds; i++) {
    kills.push(check(await operator.kill()));
    revives.push(check(await operator.revive()));
  }
  await operator.close();
  await opNc.close();
  for (const agent of agents) await agent.leave();
  await Promise.all(ncs.map((nc) => nc.close()));
  return { agents: n, connections, joinMs: Math.round(joinMs), kill: summarize(kills), revive: summarize(revives) };
}

const server = await startNatsServer({});
const results: SizeResult[] = [];
let failed = false;
try {
  for (const n of sizes) results.push(await runSize(server.url, n));
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  failed = true;
} finally {
  await server.stop();
}

const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?', node: process.version };
if (values.json) {
  console.log(JSON.stringify({ machine, rounds, results }, null, 2));
} else {
  console.log(
    `kill propagation: ${rounds} rounds of kill + revive per size, after one warm-up; ${machine.cpus} CPUs, ${machine.cpu}, ${machine.node}`,
  );
  console.log('times in ms from the operator publish; "last ack" = kill-to-last-acknowledgement of one operation');
  console.log('');
  console.log('agents  conns  op      last ack p50  last ack p99  last ack max  per-op ack p50 (median)  per-op ack p99 (median)');
  for (const r of results) {
    for (const op of ['kill', 'revive'] as const) {
      const s = r[op];
      console.log(
        [
          String(r.agents).padStart(6),
          String(r.connections).padStart(5),
          op.padEnd(6),
          String(s.lastAck.p50).padStart(12),
          String(s.lastAck.p99).padStart(13),
          String(s.lastAck.max).padStart(13),
          String(s.perAckP50.p50).padStart(24),
          String(s.perAckP99.p50).padStart(24),
        ].join('  '),
      );
    }
  }
  for (const r of results) console.log(`join of ${r.agents} agents: ${r.joinMs} ms`);
}
process.exit(failed ? 1 : 0);
