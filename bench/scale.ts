/**
 * Scale benchmark (issues 5, 6, 12): many agents, many pending requests.
 * Not a test: it prints numbers.
 *
 *   node --expose-gc --import tsx bench/scale.ts                   # 10,000 agents in one process
 *   node --expose-gc --import tsx bench/scale.ts --agents 1000 --processes 10
 *   node --expose-gc --import tsx bench/scale.ts --pending 100000  # pending requests, one timer structure
 *   ... --json for one JSON object
 */
import { fork } from 'node:child_process';
import { createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { type Agent, joinMesh } from '@trustmesh/client';
import { startNatsServer } from '@trustmesh/embedded-nats';
import { generateKey } from '@trustmesh/protocol';

const HELP = `Usage: node --expose-gc --import tsx bench/scale.ts [flags]

  --agents N       agents to join (default 10000)
  --processes P    spread the agents over P child processes, each on its own connection
                   (default 1: all in this process, one shared connection)
  --batch B        agents joining at once (default 100)
  --idle MS        after joining, measure CPU of the idle mesh for MS (default 15000: one heartbeat interval)
  --pending N      instead: N pending requests from one agent to a silent peer (memory, timers)
  --json           one JSON object on stdout
  --help`;

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    processes: { type: 'string', default: '1' },
    batch: { type: 'string', default: '100' },
    idle: { type: 'string', default: '15000' },
    pending: { type: 'string' },
    child: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const log = (line: string) => !values.json && console.error(line);
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

async function joinMany(url: string, mesh: string, n: number, batch: number, onProgress?: (done: number, ms: number) => void) {
  const nc = await connect({ servers: url, name: 'scale' });
  const agents: Agent[] = [];
  const t0 = performance.now();
  const checkpoints: Array<{ agents: number; ms: number }> = [];
  for (let i = 0; i < n; i += batch) {
    const size = Math.min(batch, n - i);
    agents.push(...(await Promise.all(Array.from({ length: size }, (_, j) => joinMesh({ mesh, name: `a${i + j}`, connection: nc })))));
    if (agents.length % Math.max(batch, Math.floor(n / 10)) === 0 || agents.length === n) {
      const ms = performance.now() - t0;
      checkpoints.push({ agents: agents.length, ms: Math.round(ms) });
      onProgress?.(agents.length, ms);
    }
  }
  return { nc, agents, ms: performance.now() - t0, checkpoints };
}

if (values.child) {
  // A child: join its share, report, wait until told how many peers to expect, report when it knows them.
  process.once(
    'message',
    async ({ url, mesh, n, batch, total }: { url: string; mesh: string; n: number; batch: number; total: number }) => {
      const { agents, ms } = await joinMany(url, mesh, n, batch);
      process.send?.({ joined: n, ms });
      const t0 = performance.now();
      while (agents[0]!.peers().length < total - 1) await new Promise((r) => setTimeout(r, 20));
      process.send?.({ complete: true, ms: performance.now() - t0 });
      process.once('message', async () => {
        for (const a of agents) await a.leave();
        process.exit(0);
      });
    },
  );
} else {
  const server = await startNatsServer();
  try {
    const mesh = `scale${randomBytes(4).toString('hex')}`;
    if (values.pending !== undefined) {
      const n = Number(values.pending);
      const agent = await joinMesh({ mesh, name: 'asker', servers: server.url });
      const silent = generateKey().did;
      const before = heap();
      let timers = 0;
      const hook = createHook({
        init(_id, type) {
          if (type === 'Timeout') timers++;
        },
      }).enable();
      const t0 = performance.now();
      const pending = Array.from({ length: n }, () => agent.request(silent, 'q', null, { timeoutMs: 120_000 }).catch(() => undefined));
      const ms = performance.now() - t0;
      hook.disable();
      const after = heap();
      const result = {
        pending: agent.stats().pendingRequests,
        issueMs: Math.round(ms),
        heapBytesPerPending: Math.round((after - before) / n),
        timersCreated: timers,
        activeTimeoutsNow: process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length,
      };
      await agent.leave();
      await Promise.all(pending);
      if (values.json) console.log(JSON.stringify(result));
      else
        console.log(
          `${result.pending.toLocaleString()} pending requests: issued in ${result.issueMs} ms, ${result.heapBytesPerPending} B heap each (request frames sent included), ${result.timersCreated} timers created while issuing them`,
        );
    } else {
      const n = Number(values.agents);
      const processes = Number(values.processes);
      const batch = Number(values.batch);
      if (processes === 1) {
        const before = heap();
        const { agents, ms, checkpoints, nc } = await joinMany(server.url, mesh, n, batch, (done, t) =>
          log(`[scale] ${done} agents joined in ${Math.round(t)} ms`),
        );
        const t1 = performance.now();
        while (agents[0]!.peers().length < n - 1) await new Promise((r) => setTimeout(r, 20));
        const settleMs = performance.now() - t1;
        const after = heap();
        log(
          `[scale] ${n} agents: joined in ${(ms / 1000).toFixed(1)} s, all known ${Math.round(settleMs)} ms later, ${Math.round((after - before) / n)} B heap per agent`,
        );
        const idleMs = Number(values.idle);
        log(`[scale] idle for ${idleMs} ms (heartbeats)`);
        const cpu0 = process.cpuUsage();
        await new Promise((r) => setTimeout(r, idleMs));
        const cpu = process.cpuUsage(cpu0);
        const late0 = performance.now();
        const late = await joinMesh({ mesh, name: 'late', servers: server.url });
        const lateJoinMs = performance.now() - late0;
        const result = {
          agents: n,
          joinSeconds: ms / 1000,
          checkpoints,
          settleMs: Math.round(settleMs),
          heapBytesPerAgent: Math.round((after - before) / n),
          idleCpuPctPerThousandAgents: Number((((cpu.user + cpu.system) / 1000 / idleMs) * 100 * (1000 / n)).toFixed(3)),
          lateJoinerMs: Math.round(lateJoinMs),
          lateJoinerPeers: late.peers().length,
        };
        const report = () => {
          console.log(
            `${n.toLocaleString()} agents on one connection: joined in ${result.joinSeconds.toFixed(1)} s; every one known to each other ${result.settleMs} ms later`,
          );
          console.log(`  per 10%: ${checkpoints.map((c) => `${c.agents}@${c.ms}ms`).join(' ')}`);
          console.log(
            `  heap ${result.heapBytesPerAgent.toLocaleString()} B per agent (target <= 16384); idle CPU ${result.idleCpuPctPerThousandAgents}% of a core per 1,000 agents`,
          );
          console.log(
            `  a late joiner (own connection) joined in ${result.lateJoinerMs} ms and knew ${result.lateJoinerPeers} peers at once (registry)`,
          );
        };
        if (values.json) console.log(JSON.stringify(result));
        else report();
        log('[scale] leaving');
        await late.leave();
        for (let i = 0; i < agents.length; i += 500) await Promise.all(agents.slice(i, i + 500).map((a) => a.leave()));
        await nc.close();
      } else {
        const per = Math.ceil(n / processes);
        const children = Array.from({ length: processes }, () =>
          fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--import', 'tsx'] }),
        );
        const t0 = performance.now();
        const joined = children.map((c) => new Promise<number>((resolve) => c.once('message', (m: { ms: number }) => resolve(m.ms))));
        for (const c of children) c.send({ url: server.url, mesh, n: per, batch, total: per * processes });
        const joinMs = await Promise.all(joined);
        const complete = await Promise.all(
          children.map((c) => new Promise<number>((resolve) => c.once('message', (m: { ms: number }) => resolve(m.ms)))),
        );
        const totalMs = performance.now() - t0;
        for (const c of children) c.send('leave');
        await Promise.all(children.map((c) => new Promise((resolve) => c.once('exit', resolve))));
        const result = {
          agents: per * processes,
          processes,
          slowestJoinMs: Math.round(Math.max(...joinMs)),
          allKnownMs: Math.round(totalMs),
          slowestSettleMs: Math.round(Math.max(...complete)),
        };
        if (values.json) console.log(JSON.stringify(result));
        else
          console.log(
            `${result.agents} agents in ${processes} processes: slowest process joined its share in ${result.slowestJoinMs} ms; every process knew every agent ${result.allKnownMs} ms after the start`,
          );
      }
    }
  } finally {
    await server.stop();
  }
}
