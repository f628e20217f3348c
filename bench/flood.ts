/**
 * Flood benchmark (issue 6): how a known peer's requests fare while an attacker
 * process floods the receiver. Not a test: it prints numbers.
 *
 *   npx tsx bench/flood.ts                 # bad signatures from fresh keys, max rate
 *   npx tsx bench/flood.ts --kind replay-memory --json
 *   npx tsx bench/flood.ts --help
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { joinMesh } from '@trustmesh/client';
import { startNatsServer } from '@trustmesh/embedded-nats';
import { generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { FLOOD_PROCESS } from '@trustmesh/test-utils';

const HELP = `Usage: npx tsx bench/flood.ts [flags]

An attacker process floods agent bob while agent alice (a known peer, another
process's worth of work in this one) sends bob sequential requests. Reports
alice's success rate and latency percentiles, the attacker's publish rate, and
what bob refused.

  --kind K         bad-signature (default): frames under fresh keys whose signatures
                   fail (S < L, so each costs a full verify), half on bob's inbox,
                   half on presence; replay-memory: one key's valid frames with fresh
                   ids, future-dated inside the window, with the intake budgets lifted and
                   a 20,000-entry replay memory, so the memory itself is what is tried
  --duration MS    flood length (default 5000)
  --rate N         cap the attacker at N frames/s (default 0: as fast as it can)
  --keys N         fresh keys in the bad-signature flood (default 2000)
  --json           one JSON object on stdout
  --help`;

const { values } = parseArgs({
  options: {
    kind: { type: 'string', default: 'bad-signature' },
    duration: { type: 'string', default: '5000' },
    rate: { type: 'string', default: '0' },
    keys: { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const kind = values.kind;
if (kind !== 'bad-signature' && kind !== 'replay-memory') {
  console.error(`--kind must be bad-signature or replay-memory (got ${kind})`);
  process.exit(2);
}
const durationMs = Number(values.duration);
const rate = Number(values.rate);
const keyCount = Number(values.keys);
const log = (line: string) => !values.json && console.error(line);

const server = await startNatsServer();
try {
  const mesh = `flood${randomBytes(4).toString('hex')}`;
  const bob = await joinMesh({
    mesh,
    name: 'bob',
    servers: server.url,
    ...(kind === 'replay-memory' && {
      maxReplayEntries: 20_000,
      intake: { unknownKeyRate: 1e9, unknownRate: 1e9, maxUnknownQueued: 100_000 },
    }),
  });
  const alice = await joinMesh({ mesh, name: 'alice', servers: server.url });
  bob.handle('echo', (data) => data);
  while (alice.peers().length === 0 || bob.peers().length === 0) await new Promise((r) => setTimeout(r, 10));

  log(`[flood] building ${kind} frames`);
  const frames: Array<[string, Uint8Array]> = [];
  if (kind === 'bad-signature') {
    for (let i = 0; i < keyCount; i++) {
      const key = generateKey();
      const subject = i % 2 === 0 ? subjects.message(mesh, bob.agentId, key.agentId) : subjects.presence(mesh, key.agentId);
      const frame = signFrame(key, { sub: subject, typ: 'x', aud: bob.did, data: 'x'.repeat(200) }).bytes;
      const signature = randomBytes(64);
      signature[63]! &= 0x0f; // S < L: the receiver must run the whole verification
      frame.set(signature, 33);
      frames.push([subject, frame]);
    }
  } else {
    const mallory = generateKey();
    const subject = subjects.message(mesh, bob.agentId, mallory.agentId);
    const now = Date.now();
    for (let i = 0; i < 20_000; i++)
      frames.push([
        subject,
        signFrame(mallory, { sub: subject, typ: 'spam', aud: bob.did, iat: now + 5_000 + (i % 20_000), data: i }).bytes,
      ]);
  }

  const child = fork(FLOOD_PROCESS, [], { serialization: 'advanced' });
  const ready = new Promise<void>((resolve) => child.once('message', () => resolve()));
  const done = new Promise<{ sent: number; rate: number }>((resolve) =>
    child.on('message', (m: { done?: boolean; sent: number; rate: number }) => m.done && resolve(m)),
  );
  child.send({ url: server.url, frames, durationMs, rate });
  await ready;
  log('[flood] attacker running; alice probes');

  const latencies: number[] = [];
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const end = Date.now() + durationMs - 200;
  await new Promise((r) => setTimeout(r, 200));
  while (Date.now() < end) {
    const t0 = performance.now();
    try {
      await alice.request(bob.did, 'echo', 'ping', { timeoutMs: 2_000 });
      latencies.push(performance.now() - t0);
    } catch {
      failed++;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const attacker = await done;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  const stats = bob.stats();
  const result = {
    kind,
    durationMs,
    attackerRate: Math.round(attacker.rate),
    requests: latencies.length + failed,
    successRate: latencies.length / Math.max(1, latencies.length + failed),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    victimCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / durationMs) * 100),
    bobRejected: Object.fromEntries(Object.entries(stats.rejected).filter(([, n]) => (n ?? 0) > 0)),
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`flood ${kind}: attacker ${result.attackerRate.toLocaleString()} frames/s for ${durationMs} ms`);
    console.log(
      `  known peer: ${(result.successRate * 100).toFixed(1)}% of ${result.requests} requests succeeded, p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms`,
    );
    console.log(`  victim process CPU ${result.victimCpuPct}%; bob refused ${JSON.stringify(result.bobRejected)}`);
  }
  await alice.leave();
  await bob.leave();
} finally {
  await server.stop();
}
