/**
 * Request/reply latency (issue 12): p50 and p99 of a signed request/reply
 * between two agents against raw NATS request/reply, with the crypto floor
 * (two signs and two verifies) measured in the same run; and the cost of the
 * verification pool at low load.
 *
 *   npx tsx bench/latency.ts [--rounds 5] [--requests 2000] [--json]
 */
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Agent, joinMesh } from '@trustmesh/client';
import { startNatsServer, type NatsServerHandle } from '@trustmesh/embedded-nats';
import { cryptoFixture, measureSign, measureVerify } from './lib/crypto.ts';
import {
  intFlag,
  loadAverage,
  machineInfo,
  machineLine,
  parseFlags,
  percentile,
  progress,
  runMain,
  type Summary,
  summarize,
  table,
} from './lib/harness.ts';

const TARGET_OVERHEAD_TO_FLOOR = 1.25; // issue 12: signed p50 - raw p50 <= 1.25 x (2 signs + 2 verifies)

const HELP = `Usage: npx tsx bench/latency.ts [flags]

One request at a time (low load), in this process, through a private
nats-server on loopback; requester and responder on separate connections.
Each round runs, in turn:
  raw      NATS request/reply (nc.request, the responder echoes the payload)
  signed   Agent.request to an agent whose handler returns the payload: a
           signed request and a signed reply, both fully verified
  pooled   the same with verifyWorkers = cores on both agents
  floor    the crypto floor: 2 x (one sign + one verify) of a frame of the
           same size, node:crypto, one thread (1 s loops)
Reported per variant: p50 and p99 of each round, median over rounds; the
overhead = signed p50 - raw p50 (per round, median), against the floor
(target: overhead <= ${TARGET_OVERHEAD_TO_FLOOR} x floor), and the pool's cost = pooled p50 - signed p50.

Flags:
  --rounds N      measured rounds (default 5)
  --requests N    requests per variant per round (default 2000; 200 more warm up)
  --payload BYTES payload size (default 256)
  --workers N     pool size for "pooled" (default: cores)
  --json          one JSON object on stdout
  -h, --help
`;

const state: { server?: NatsServerHandle; close: (() => Promise<unknown>)[] } = { close: [] };

/** Round-trip times in ms of `n` sequential calls, after `warm` unrecorded ones. */
async function timeCalls(n: number, warm: number, call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warm; i++) await call();
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    out[i] = performance.now() - t;
  }
  return out;
}

interface Pair {
  requester: Agent;
  responder: Agent;
}

async function agentPair(url: string, mesh: string, workers: number): Promise<Pair> {
  const init = { mesh, servers: url, ...(workers > 0 && { verifyWorkers: workers }) };
  const responder = await joinMesh({ ...init, name: 'responder' });
  responder.handle('echo', (data) => data);
  const requester = await joinMesh({ ...init, name: 'requester' });
  state.close.push(
    () => requester.leave(),
    () => responder.leave(),
  );
  // Both know each other from presence before timing starts.
  const deadline = Date.now() + 10_000;
  while (!requester.peers().some((p) => p.did === responder.did) || !responder.peers().some((p) => p.did === requester.did)) {
    if (Date.now() > deadline) throw new Error('agents did not see each other within 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { requester, responder };
}

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    rounds: { type: 'string' },
    requests: { type: 'string' },
    payload: { type: 'string' },
    workers: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const machine = await machineInfo();
  const o = {
    rounds: intFlag('rounds', flags.rounds, 5, 1, 100),
    requests: intFlag('requests', flags.requests, 2000, 10, 1_000_000),
    payload: intFlag('payload', flags.payload, 256, 1, 64 * 1024),
    workers: intFlag('workers', flags.workers, machine.cores, 1, 64),
  };
  state.server = await startNatsServer({});
  const url = state.server.url;
  const payload = new Uint8Array(o.payload).fill(7);

  const server: NatsConnection = await connect({ servers: url, name: 'bench-latency-responder' });
  const client: NatsConnection = await connect({ servers: url, name: 'bench-latency-requester' });
  state.close.push(
    () => client.close(),
    () => server.close(),
  );
  server.subscribe('bench.latency', {
    callback: (err, msg) => {
      if (err === null) msg.respond(msg.data);
    },
  });
  await server.flush();
  const signed = await agentPair(url, `tmlat${Date.now().toString(36)}a`, 0);
  const pooled = await agentPair(url, `tmlat${Date.now().toString(36)}b`, o.workers);
  const fixture = cryptoFixture(o.payload);

  const rows = { raw: [] as number[][], signed: [] as number[][], pooled: [] as number[][] };
  const floors: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const warm = 200;
    rows.raw.push(await timeCalls(o.requests, warm, () => client.request('bench.latency', payload, { timeout: 5000 })));
    rows.signed.push(await timeCalls(o.requests, warm, () => signed.requester.request(signed.responder.did, 'echo', payload)));
    rows.pooled.push(await timeCalls(o.requests, warm, () => pooled.requester.request(pooled.responder.did, 'echo', payload)));
    const sign = measureSign(fixture, 1000);
    const verify = measureVerify(fixture, 1000);
    const floorMs = 2 * (1000 / sign.rate + 1000 / verify.rate);
    floors.push(floorMs);
    const p = (xs: number[]) => percentile(xs, 0.5).toFixed(3);
    progress(
      `round ${r + 1}/${o.rounds}: p50 raw ${p(rows.raw[r]!)} ms, signed ${p(rows.signed[r]!)} ms, pooled ${p(rows.pooled[r]!)} ms; floor ${floorMs.toFixed(3)} ms`,
    );
  }
  const stat = (runs: number[][]) => ({
    p50Ms: summarize(runs.map((xs) => percentile(xs, 0.5))),
    p99Ms: summarize(runs.map((xs) => percentile(xs, 0.99))),
  });
  const results = { raw: stat(rows.raw), signed: stat(rows.signed), pooled: stat(rows.pooled), cryptoFloorMs: summarize(floors) };
  const overhead = summarize(rows.signed.map((xs, i) => percentile(xs, 0.5) - percentile(rows.raw[i]!, 0.5)));
  const poolCost = summarize(rows.pooled.map((xs, i) => percentile(xs, 0.5) - percentile(rows.signed[i]!, 0.5)));
  const ratio = overhead.median / results.cryptoFloorMs.median;
  const report = {
    benchmark: 'trustmesh/latency',
    ok: true,
    machine: { ...machine, loadAverageAtEnd: loadAverage() },
    config: o,
    results,
    overheadP50Ms: overhead,
    poolCostP50Ms: poolCost,
    ratios: { overheadToFloor: { value: ratio, target: TARGET_OVERHEAD_TO_FLOOR, met: ratio <= TARGET_OVERHEAD_TO_FLOOR } },
  };
  if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    const ms = (s: Summary) => s.median.toFixed(3);
    const range = (s: Summary) => `${s.min.toFixed(3)} .. ${s.max.toFixed(3)}`;
    process.stdout.write(
      `TrustMesh request/reply latency: ${o.rounds} rounds of ${o.requests} sequential requests per variant, payload ${o.payload} B\n` +
        `${machineLine(machine)}\n\n` +
        table([
          ['variant', 'p50 ms', 'p50 range', 'p99 ms', 'p99 range'],
          ['raw NATS request/reply', ms(results.raw.p50Ms), range(results.raw.p50Ms), ms(results.raw.p99Ms), range(results.raw.p99Ms)],
          [
            'signed (2 agents)',
            ms(results.signed.p50Ms),
            range(results.signed.p50Ms),
            ms(results.signed.p99Ms),
            range(results.signed.p99Ms),
          ],
          [
            `signed, verifyWorkers ${o.workers}`,
            ms(results.pooled.p50Ms),
            range(results.pooled.p50Ms),
            ms(results.pooled.p99Ms),
            range(results.pooled.p99Ms),
          ],
        ]) +
        `\ncrypto floor (2 signs + 2 verifies): ${ms(results.cryptoFloorMs)} ms\n` +
        `p50 overhead signed - raw: ${ms(overhead)} ms = ${ratio.toFixed(2)} x floor; target <= ${TARGET_OVERHEAD_TO_FLOOR}: ${ratio <= TARGET_OVERHEAD_TO_FLOOR ? 'met' : 'NOT MET'}\n` +
        `pool at low load: p50 +${ms(poolCost)} ms\n`,
    );
  }
  return 0;
}

await runMain(main, async () => {
  for (const close of state.close.splice(0).reverse()) await close().catch(() => undefined);
  await state.server?.stop().catch(() => undefined);
});
