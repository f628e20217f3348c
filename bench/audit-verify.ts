/**
 * Audit verify benchmark (DESIGN.md §10: audit verify >= 1.7x the single-core
 * verify rate on 2 cores). Prints a table, or JSON with --json.
 *
 *   npx tsx bench/audit-verify.ts [--records 1000000] [--distinct 20000] [--workers N] [--no-single] [--json]
 *
 * Writes a log file of --records frame records (256-byte payload message frames
 * from 16 agents; --distinct different signed frames, repeated with their own
 * positions and capture sequences, because signing a million frames would take
 * longer than verifying them: every record is still fully re-verified, nothing
 * is cached), then runs verifyLog on it: chain, verdicts, and every Ed25519
 * signature, with --workers threads (default: one per core) and, unless
 * --no-single, with 0 workers (everything in one thread). Reference, same run:
 * node:crypto Ed25519 verify/s in one thread over the same frames.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type NewRecord, openFileStore, openLogFile, signCheckpoint, statelessVerdict, verifyLog } from '@trustmesh/audit';
import { generateKey, nodeEd25519, signFrame, signingInput, subjects } from '@trustmesh/protocol';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    distinct: { type: 'string', default: '20000' },
    workers: { type: 'string' },
    'no-single': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/audit-verify.ts [--records 1000000] [--distinct 20000] [--workers N] [--no-single] [--json]');
  process.exit(0);
}
const N = Number(args.records);
const D = Math.min(N, Number(args.distinct));
const workers = args.workers === undefined ? os.cpus().length : Number(args.workers);
const log = (s: string) => {
  if (!args.json) console.error(s);
};
const mesh = 'bench';
const dir = await mkdtemp(join(os.tmpdir(), 'tm-audit-verify-'));
try {
  const agents = Array.from({ length: 16 }, () => generateKey());
  log(`signing ${D} distinct frames ...`);
  const frames = Array.from({ length: D }, (_, i) => {
    const from = agents[i % agents.length]!;
    const subject = subjects.message(mesh, agents[(i + 1) % agents.length]!.agentId, from.agentId);
    const frame = signFrame(from, { sub: subject, typ: 'bench', data: 'x'.repeat(256) }).bytes;
    return { subject, frame, verdict: statelessVerdict(subject, frame) };
  });

  // single-core Ed25519 verify/s over the same frames (the reference)
  const prepared = agents.map((a) => nodeEd25519.prepare(a.publicKey));
  const inputs = frames
    .slice(0, 2048)
    .map((f, i) => ({ v: prepared[i % agents.length]!, m: signingInput(f.frame.subarray(97)), s: f.frame.subarray(33, 97) }));
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < 3000) {
    for (const x of inputs) {
      x.v(x.m, x.s);
      n++;
    }
  }
  const verifyPerSec = n / ((performance.now() - t) / 1000);

  log(`writing ${N} records ...`);
  const path = join(dir, 'audit.log');
  const store = await openFileStore(path, { mesh, fsync: false });
  const auditKey = generateKey();
  for (let i = 0; i < N; i += 10_000) {
    const batch: NewRecord[] = [];
    for (let j = i; j < Math.min(N, i + 10_000); j++) {
      const f = frames[j % D]!;
      batch.push({
        kind: 'frame',
        time: 1_767_225_600_000 + j,
        seqFirst: j + 1,
        seqLast: j + 1,
        subject: f.subject,
        verdict: f.verdict,
        frame: f.frame,
      });
    }
    await store.append(batch);
    if (i % 200_000 === 0 && i > 0) await store.saveCheckpoint(signCheckpoint(auditKey, mesh, store.length, store.head).frame);
  }
  await store.saveCheckpoint(signCheckpoint(auditKey, mesh, store.length, store.head).frame);
  await store.close();
  const bytes = (await stat(path)).size;

  const run = async (w: number) => {
    log(`verifying with ${w} workers ...`);
    const report = await verifyLog(await openLogFile(path), { trusted: auditKey.did, workers: w });
    if (!report.ok) throw new Error(`verify failed: ${JSON.stringify(report.firstBad)}`);
    return {
      workers: w,
      seconds: +(report.durationMs / 1000).toFixed(2),
      recordsPerSec: Math.round(report.records / (report.durationMs / 1000)),
    };
  };
  const runs = [await run(workers)];
  if (!args['no-single'] && workers !== 0) runs.push(await run(0));

  const result = {
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg().map((x) => +x.toFixed(2)) },
    records: N,
    distinctFrames: D,
    logBytes: bytes,
    verifyPerSecSingleCore: Math.round(verifyPerSec),
    runs: runs.map((r) => ({ ...r, ratioToSingleCoreVerify: +(r.recordsPerSec / verifyPerSec).toFixed(2) })),
  };
  if (args.json) console.log(JSON.stringify(result));
  else {
    const f = (x: number) => x.toLocaleString('en-US');
    console.log(
      `\naudit verify, ${f(N)} records (${(bytes / 2 ** 20).toFixed(0)} MiB), ${result.machine.cpus} cores, load ${result.machine.loadavg.join(' ')}`,
    );
    console.log('| run | seconds | records/s | / single-core verify |');
    console.log('| --- | --- | --- | --- |');
    console.log(`| Ed25519 verify, 1 thread (reference) | | ${f(result.verifyPerSecSingleCore)} | 1.00 |`);
    for (const r of result.runs) {
      console.log(`| verifyLog, ${r.workers} workers | ${r.seconds} | ${f(r.recordsPerSec)} | ${r.ratioToSingleCoreVerify.toFixed(2)} |`);
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
