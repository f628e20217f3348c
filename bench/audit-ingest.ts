/**
 * Audit ingest benchmark (DESIGN.md §10: the audit ingests >= 2x the signed
 * throughput, with zero gaps). Prints a table, or JSON with --json.
 *
 *   npx tsx bench/audit-ingest.ts [--messages 50000] [--workers N] [--no-fsync] [--no-verify-on-ingest] [--json]
 *
 * One private nats-server (JetStream on a temp store), one audit service with
 * the file store, pre-signed 256-byte message frames from 16 agents:
 *   backlog  the capture stream already holds --messages frames when the audit
 *            starts: records/s until it has caught up (its own speed);
 *   live     the audit runs while one publisher sends --messages frames as fast
 *            as it can: records/s over the run, and the lag (ms from the
 *            publisher's last flush until the audit has recorded everything).
 * Reference, same process, same run: the single-core Ed25519 verify rate
 * (node:crypto), which bounds TrustMesh's signed end-to-end throughput from above
 * (bench/signed-throughput.ts measures ~0.82-0.88 of it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { openFileStore, openLogFile, startAudit, verifyLog } from '@trustmesh/audit';
import { startNatsServer } from '@trustmesh/embedded-nats';
import { generateKey, nodeEd25519, signFrame, signingInput, subjects } from '@trustmesh/protocol';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '50000' },
    workers: { type: 'string' },
    'no-fsync': { type: 'boolean', default: false },
    'no-verify-on-ingest': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/audit-ingest.ts [--messages 50000] [--workers N] [--no-fsync] [--no-verify-on-ingest] [--json]');
  process.exit(0);
}
const N = Number(args.messages);
const workers = args.workers === undefined ? os.cpus().length : Number(args.workers);
const log = (s: string) => {
  if (!args.json) console.error(s);
};

function verifyRate(): number {
  const key = generateKey();
  const frames = Array.from(
    { length: 1024 },
    (_, i) => signFrame(key, { sub: `tm.b.msg.x.${key.agentId}`, typ: 't', data: 'x'.repeat(256) + i }).bytes,
  );
  const verify = nodeEd25519.prepare(key.publicKey);
  const inputs = frames.map((f) => signingInput(f.subarray(97)));
  const sigs = frames.map((f) => f.subarray(33, 97));
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 2000) for (let i = 0; i < 1024; i++, n++) verify(inputs[i]!, sigs[i]!);
  return n / ((performance.now() - start) / 1000);
}

const mesh = 'bench';
const server = await startNatsServer();
const dir = await mkdtemp(join(os.tmpdir(), 'tm-audit-bench-'));
try {
  const agents = Array.from({ length: 16 }, () => generateKey());
  const sign = (count: number) =>
    Array.from({ length: count }, (_, i) => {
      const from = agents[i % agents.length]!;
      const sub = subjects.message(mesh, agents[(i + 1) % agents.length]!.agentId, from.agentId);
      return { sub, bytes: signFrame(from, { sub, typ: 'bench', data: 'x'.repeat(256) }).bytes };
    });
  log(`signing ${2 * N} frames ...`);
  const backlog = sign(N);
  const live = sign(N);
  const verifyPerSec = verifyRate();

  const path = join(dir, 'audit.log');
  const key = generateKey();
  const fsync = !args['no-fsync'];
  // --no-fsync: the file store skips fdatasync (to see what syncing costs); otherwise every batch is synced before its ack.
  const store = await openFileStore(path, { mesh, fsync });
  const verifyOnIngest = !args['no-verify-on-ingest'];
  const init = { mesh, key, servers: server.url, store, workers, checkpointIntervalMs: 1000, batchSize: 2000, verifyOnIngest };
  await (await startAudit(init)).stop(); // creates the capture stream and the durable consumer
  const pub = await connect({ servers: server.url });
  const publish = async (frames: { sub: string; bytes: Uint8Array }[]) => {
    for (let i = 0; i < frames.length; i++) {
      pub.publish(frames[i]!.sub, frames[i]!.bytes);
      if (i % 1000 === 999) await pub.flush();
    }
    await pub.flush();
  };
  log('backlog: publishing while no audit runs ...');
  await publish(backlog);
  let t0 = performance.now();
  const audit = await startAudit(init);
  await audit.caughtUp(600_000);
  const backlogSec = (performance.now() - t0) / 1000;
  const afterBacklog = audit.stats().records;

  log('live: publishing while the audit runs ...');
  t0 = performance.now();
  await publish(live);
  const published = performance.now();
  await audit.caughtUp(600_000);
  const done = performance.now();
  const stats = audit.stats();
  await audit.stop();
  await store.close();
  await pub.close();
  const report = await verifyLog(await openLogFile(path), { trusted: key.did, workers });

  const result = {
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    messages: N,
    workers,
    fsync,
    verifyOnIngest,
    verifyPerSecSingleCore: Math.round(verifyPerSec),
    backlog: { recordsPerSec: Math.round((afterBacklog - 1) / backlogSec), seconds: +backlogSec.toFixed(2) },
    live: {
      recordsPerSec: Math.round((stats.records - afterBacklog) / ((done - t0) / 1000)),
      publishPerSec: Math.round(N / ((published - t0) / 1000)),
      lagAtEndMs: Math.round(done - published),
    },
    gaps: stats.gaps,
    verifyOk: report.ok,
    records: report.records,
  };
  if (args.json) console.log(JSON.stringify(result));
  else {
    const r = (x: number) => x.toLocaleString('en-US');
    console.log(
      `\naudit ingest, ${N} frames of 256-byte payload, ${workers} signature workers, ${fsync ? 'fdatasync per batch' : 'no fdatasync'}, ${verifyOnIngest ? 'verdicts at ingest' : 'unchecked at ingest'}`,
    );
    console.log('| measure | value | / single-core verify |');
    console.log('| --- | --- | --- |');
    console.log(`| Ed25519 verify/s, 1 core | ${r(result.verifyPerSecSingleCore)} | 1.00 |`);
    console.log(
      `| backlog ingest records/s | ${r(result.backlog.recordsPerSec)} | ${(result.backlog.recordsPerSec / verifyPerSec).toFixed(2)} |`,
    );
    console.log(`| live ingest records/s | ${r(result.live.recordsPerSec)} | ${(result.live.recordsPerSec / verifyPerSec).toFixed(2)} |`);
    console.log(`| live publish msgs/s | ${r(result.live.publishPerSec)} | ${(result.live.publishPerSec / verifyPerSec).toFixed(2)} |`);
    console.log(`| lag at end of live run | ${r(result.live.lagAtEndMs)} ms | |`);
    console.log(`| gap records | ${result.gaps} | |`);
    console.log(`| verify of the log | ${result.verifyOk ? 'ok' : 'FAILED'} (${r(result.records)} records) | |`);
  }
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
