/**
 * Breakers memory benchmark (issue 8): what do 10,000 per-peer breakers cost
 * in heap and timers?
 *
 *   npx tsx bench/breakers-memory.ts                  # table
 *   npx tsx bench/breakers-memory.ts --json           # one JSON object on stdout
 *   npx tsx bench/breakers-memory.ts --peers 20000
 *
 * Each case runs in a fresh child process (node --expose-gc), so heap starts
 * from the same place. Cases:
 *   closed    @trustmesh/breakers, one request per peer (succeeds): 10,000 closed breakers
 *   open      @trustmesh/breakers, one failing request per peer (volumeThreshold 1,
 *             the agent's RequestTimeoutError): 10,000 open breakers
 *   opossum   plain opossum 9 with its defaults (timeout, own bucket interval, snapshot
 *             interval), one call each: the cost without sharing, for comparison
 * For each: heap used after a full GC minus before (bytes per breaker), live Timeout
 * objects (setTimeout/setInterval, ref'd or not, counted with async_hooks), Timeouts
 * keeping the loop alive (process.getActiveResourcesInfo(), ref'd only), and the
 * shared rotation timers. No NATS: the interceptor is called directly with a `next`
 * that resolves or rejects, so the figure is the breakers' own.
 */
import { createHook } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { breakers, rotationTimers } from '@trustmesh/breakers';
import { RequestTimeoutError } from '@trustmesh/client';
import { generateKey } from '@trustmesh/protocol';
// opossum is a dependency of @trustmesh/breakers, not of bench/: load it from there (only what this bench calls is typed).
type PlainBreaker = { fire(): Promise<unknown> };
const CircuitBreaker = createRequire(new URL('../packages/breakers/package.json', import.meta.url))('opossum') as new (
  action: () => Promise<unknown>,
  options: { name: string },
) => PlainBreaker;

const CASES = ['closed', 'open', 'opossum'] as const;
type CaseName = (typeof CASES)[number];

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    peers: { type: 'string', default: '10000' },
    child: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('Usage: npx tsx bench/breakers-memory.ts [--peers 10000] [--json]');
  process.exit(0);
}
const peers = Number(values.peers);

interface CaseResult {
  case: CaseName;
  peers: number;
  heapBytes: number;
  bytesPerBreaker: number;
  liveTimeouts: number;
  refedTimeouts: number;
  rotationTimers: number;
}

async function child(name: CaseName): Promise<CaseResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  // Peers' identities first, so the heap delta counts breakers, not keys.
  const peerRefs = Array.from({ length: peers }, () => {
    const key = generateKey();
    return { did: key.did, agentId: key.agentId };
  });
  const live = new Set<number>();
  createHook({
    init(id, type) {
      if (type === 'Timeout') live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  const settle = async () => {
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  await settle();
  gc();
  const before = process.memoryUsage().heapUsed;
  const baseTimers = live.size;
  const keep: unknown[] = [];
  if (name === 'opossum') {
    for (const peer of peerRefs) {
      const breaker = new CircuitBreaker(async () => peer.did, { name: peer.did });
      await breaker.fire();
      keep.push(breaker);
    }
  } else {
    const br = breakers({ volumeThreshold: 1, resetTimeoutMs: 600_000 });
    keep.push(br);
    for (const peer of peerRefs) {
      const call = { to: peer, typ: 'work', data: null, timeoutMs: 1_000, signal: undefined };
      if (name === 'closed') await br.interceptRequest!(call, async () => 'ok');
      else
        await br.interceptRequest!(call, async () => {
          throw new RequestTimeoutError(peer.did, 'work', 1_000);
        }).catch(() => undefined);
    }
    const states = br.breakers();
    const want = name === 'closed' ? 'closed' : 'open';
    if (states.length !== peers || states.some((s) => s.state !== want)) throw new Error(`expected ${peers} ${want} breakers`);
  }
  await settle();
  gc();
  const heapBytes = process.memoryUsage().heapUsed - before;
  const result: CaseResult = {
    case: name,
    peers,
    heapBytes,
    bytesPerBreaker: Math.round(heapBytes / peers),
    liveTimeouts: live.size - baseTimers,
    refedTimeouts: process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length,
    rotationTimers: rotationTimers(),
  };
  if (keep.length === 0) throw new Error('unreachable');
  return result;
}

if (values.child !== undefined) {
  const result = await child(values.child as CaseName);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const results: CaseResult[] = [];
for (const name of CASES) {
  const r = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', self, '--child', name, '--peers', String(peers)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) {
    console.error(`case ${name} failed:\n${r.stderr}`);
    process.exit(1);
  }
  results.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as CaseResult);
}

if (values.json) {
  console.log(JSON.stringify({ node: process.version, peers, results }, null, 2));
} else {
  console.log(`breakers memory: ${peers} breakers per case, fresh process each, heap after full GC; ${process.version}`);
  console.log('');
  console.log("case      heap (MiB)  bytes/breaker  live Timeouts  ref'd Timeouts  rotation timers");
  for (const r of results) {
    console.log(
      [
        r.case.padEnd(8),
        (r.heapBytes / 1024 / 1024).toFixed(1).padStart(10),
        String(r.bytesPerBreaker).padStart(13),
        String(r.liveTimeouts).padStart(13),
        String(r.refedTimeouts).padStart(14),
        String(r.rotationTimers).padStart(15),
      ].join('  '),
    );
  }
}
