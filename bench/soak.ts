/**
 * Soak on a real 3-node nats-server cluster (issue 14): mixed signed traffic
 * (requests, one-way messages, trust reports) for a while, with a fault every
 * few seconds in rotation: a node SIGKILLed and restarted, a global kill and
 * revive, the broker restarted, the audit restarted. At the end the audit must
 * have every captured message, no gap, and verify.
 *
 *   npx tsx bench/soak.ts                      # 2 minutes, a table
 *   npx tsx bench/soak.ts --minutes 30 --json  # by hand, longer; one JSON object
 *   npx tsx bench/soak.ts --fault-every 10
 *   NODE_OPTIONS=--expose-gc npx tsx bench/soak.ts   # memory sampled after a full GC
 *
 * Every failed request is counted by error code and attributed to the fault
 * window it fell in (fault start to 3 s after it ended); a failure outside any
 * window, or an error that is not a TrustMesh error, is "unexplained". RSS and
 * heap are sampled after set-up and warm-up ("start") and after the last fault
 * has settled ("end"); the audit service runs in this process, so its buffers count
 * too (the nats-servers are other processes). The broker is on the mesh without a
 * kill switch, so a kill is acknowledged by every agent but it. Exit 1 if anything that must be zero is not (duplicates,
 * audit gaps, unexplained errors) or the audit does not verify.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type AuditService, openLogFile, startAudit, verifyLog } from '@trustmesh/audit';
import { type Broker, createBroker } from '@trustmesh/broker';
import { type Agent, joinMesh, replicasFor } from '@trustmesh/client';
import { type NatsClusterHandle, startNatsCluster } from '@trustmesh/embedded-nats';
import { createOperator, killSwitch } from '@trustmesh/kill';
import { generateKey, meshSubjects, signFrame, TrustMeshError } from '@trustmesh/protocol';

export interface SoakInit {
  /** Traffic time with faults, after set-up and warm-up. Default 2. */
  minutes?: number;
  /** Seconds between faults. Default 15. */
  faultEverySeconds?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface SoakReport {
  minutes: number;
  faults: { kind: string; atS: number; detail: string }[];
  requests: { ok: number; failed: Record<string, number> };
  notes: { sent: number; received: number };
  trustReports: { sent: number; applied: number };
  duplicatesExecuted: number;
  unexplained: { count: number; samples: string[] };
  reconnectMs: number[];
  audit: {
    records: number;
    gaps: number;
    missing: number;
    outages: number;
    verified: boolean;
    firstBad: string | null;
    capturedLastSeq: number;
    lastSeq: number;
  };
  memory: { rssStartMiB: number; rssEndMiB: number; heapStartMiB: number; heapEndMiB: number; samplesRssMiB: number[] };
}

const MiB = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
const CLIENT = { maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 100 } as const;
const SETTLE_MS = 3_000;

interface Member {
  agent: Agent;
  nc: NatsConnection;
  node: number;
}

export async function runSoak(init: SoakInit = {}): Promise<SoakReport> {
  const minutes = init.minutes ?? 2;
  const faultEveryMs = (init.faultEverySeconds ?? 15) * 1_000;
  const log = init.log ?? (() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'trustmesh-soak-'));
  const cluster: NatsClusterHandle = await startNatsCluster();
  const urls = [...cluster.urls];
  const mesh = `soak${Date.now().toString(36)}`;
  const opKey = generateKey();
  const auditKey = generateKey();
  const brokerKey = generateKey();
  const badKey = generateKey();
  const closers: (() => Promise<unknown>)[] = [];
  const pinned = (node: number) => [urls[node]!, ...urls.filter((_, i) => i !== node)];
  const reconnectMs: number[] = [];
  let lastFaultAt = 0;

  const conn = async (name: string, servers: string[]): Promise<NatsConnection> => {
    const nc = await connect({ ...CLIENT, servers, noRandomize: true, name });
    void (async () => {
      for await (const s of nc.status())
        if (s.type === 'reconnect' && lastFaultAt > 0) reconnectMs.push(Math.round(performance.now() - lastFaultAt));
    })();
    return nc;
  };

  try {
    const auditNc = await conn('audit', urls);
    closers.push(() => auditNc.close());
    const startAuditService = () =>
      startAudit({
        mesh,
        key: auditKey,
        connection: auditNc,
        path: join(dir, 'audit.log'),
        capture: { replicas: replicasFor(auditNc) },
        workers: 0,
      });
    let audit: AuditService = await startAuditService();
    const operator = await createOperator({ key: opKey, mesh, servers: urls, connectionOptions: CLIENT });
    closers.push(() => operator.close());
    const newBroker = () =>
      createBroker({
        key: brokerKey,
        mesh,
        servers: urls,
        connectionOptions: CLIENT,
        declarationMarginMs: 0,
        presenceRewards: false,
        policy: { penalties: { events: { protocol_violation: { delta: 0.001, growth: 1, max: 1 } } } },
      });
    let broker: Broker = await newBroker();
    let brokerApplied = 0;

    // Request ids executed, in two generations rotated every 30 s: a repeat (a redelivery)
    // would come within seconds, and the soak's own bookkeeping must not grow with time.
    let executed = [new Set<string>(), new Set<string>()];
    let duplicates = 0;
    const rotate = setInterval(() => {
      executed = [new Set<string>(), executed[0]!];
    }, 30_000);
    closers.push(async () => clearInterval(rotate));
    let notesReceived = 0;
    const member = async (name: string, node: number): Promise<Member> => {
      const nc = await conn(name, pinned(node));
      const agent = await joinMesh({ mesh, name, connection: nc, extensions: [killSwitch({ operators: [opKey.did] })] });
      closers.push(() => nc.close());
      closers.push(() => agent.leave());
      return { agent, nc, node };
    };
    const workers: Member[] = [];
    const requesters: Member[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await member(`worker-${i}`, i);
      w.agent.handle('work', (data) => {
        const id = (data as { id: string }).id;
        if (executed[0]!.has(id) || executed[1]!.has(id)) duplicates++;
        executed[0]!.add(id);
        return id;
      });
      w.agent.handle('note', () => {
        notesReceived++;
      });
      workers.push(w);
      requesters.push(await member(`requester-${i}`, i));
    }

    // Fault windows: a failure inside one is explained by it.
    const windows: { from: number; to: number }[] = [];
    const explained = (at: number) => windows.some((w) => at >= w.from && at <= w.to + SETTLE_MS);
    const failed: Record<string, number> = {};
    const unexplained: string[] = [];
    let ok = 0;
    let notesSent = 0;
    let reportsSent = 0;
    let running = true;
    const loops = requesters.map(async (r, ri) => {
      for (let n = 0; running; n++) {
        const w = workers[(ri + n) % workers.length]!;
        const id = `${ri}-${n}`;
        try {
          if (n % 4 === 3) {
            r.agent.send(w.agent.did, 'note', { n });
            notesSent++;
            await sleep(1);
            continue;
          }
          if (n % 50 === 49) {
            const subject = meshSubjects(mesh).message(r.agent.agentId, badKey.agentId);
            const { bytes } = signFrame(badKey, { sub: subject, typ: 'hello', data: id });
            r.agent.send(broker.did, 'trust.report', { v: 1, claim: 'protocol', frames: [{ subject, frame: bytes }] });
            reportsSent++;
            continue;
          }
          const answer = await r.agent.request<string>(w.agent.did, 'work', { id }, { timeoutMs: 2_000 });
          if (answer === id) ok++;
          else unexplained.push(`wrong answer for ${id}`);
        } catch (err) {
          const at = performance.now();
          const code = err instanceof TrustMeshError ? `${err.name}:${err.code}` : `unclear:${String(err)}`;
          failed[code] = (failed[code] ?? 0) + 1;
          if (!(err instanceof TrustMeshError) || !explained(at)) unexplained.push(`${code} at ${Math.round(at)}`);
          await sleep(20);
        }
      }
    });

    await sleep(3_000); // warm-up
    global.gc?.();
    const start = process.memoryUsage();
    const samplesRss: number[] = [MiB(start.rss)];
    const sampler = setInterval(() => samplesRss.push(MiB(process.memoryUsage().rss)), 10_000);
    const t0 = performance.now();
    const faults: SoakReport['faults'] = [];
    const kinds = ['node', 'kill', 'broker', 'audit'] as const;
    for (let f = 0; performance.now() - t0 < minutes * 60_000 - faultEveryMs / 2; f++) {
      await sleep(Math.min(faultEveryMs, Math.max(0, minutes * 60_000 - (performance.now() - t0))));
      const kind = kinds[f % kinds.length]!;
      const from = performance.now();
      lastFaultAt = from;
      windows.push({ from, to: Number.POSITIVE_INFINITY });
      let detail = '';
      if (kind === 'node') {
        const node = f % 3;
        await cluster.kill(node);
        await sleep(2_000);
        await cluster.restart(node);
        detail = `${cluster.nodes[node]!.name} SIGKILLed, restarted`;
      } else if (kind === 'kill') {
        const k = await operator.kill({ timeoutMs: 2_000 });
        await sleep(500);
        const r = await operator.revive({ timeoutMs: 2_000 });
        detail = `kill acked ${k.acknowledged}/${k.expected}, revive acked ${r.acknowledged}/${r.expected}`;
      } else if (kind === 'broker') {
        brokerApplied += broker.stats().applied;
        await broker.close();
        broker = await newBroker();
        detail = 'broker closed and started again';
      } else {
        await audit.stop();
        await sleep(1_000);
        audit = await startAuditService();
        detail = `audit stopped 1 s and resumed at ${audit.stats().lastSeq}`;
      }
      windows[windows.length - 1]!.to = performance.now();
      faults.push({ kind, atS: Math.round((from - t0) / 1_000), detail });
      log(`fault ${kind} at ${Math.round((from - t0) / 1_000)} s: ${detail}`);
    }
    await sleep(SETTLE_MS);
    running = false;
    await Promise.all(loops);
    clearInterval(sampler);
    global.gc?.();
    const end = process.memoryUsage();
    samplesRss.push(MiB(end.rss));
    brokerApplied += broker.stats().applied;

    const jsInfo = (await admin(urls, `$JS.API.STREAM.INFO.${audit.stream}`)) as { state: { last_seq: number } };
    await audit.caughtUp(60_000);
    const stats = audit.stats();
    await audit.stop();
    const report = await verifyLog(await openLogFile(join(dir, 'audit.log')), { trusted: auditKey.did });
    await broker.close();
    return {
      minutes,
      faults,
      requests: { ok, failed },
      notes: { sent: notesSent, received: notesReceived },
      trustReports: { sent: reportsSent, applied: brokerApplied },
      duplicatesExecuted: duplicates,
      unexplained: { count: unexplained.length, samples: unexplained.slice(0, 10) },
      reconnectMs,
      audit: {
        records: report.records,
        gaps: report.gapRecords,
        missing: report.missing,
        outages: report.outages,
        verified: report.ok,
        firstBad: report.firstBad === undefined ? null : JSON.stringify(report.firstBad),
        capturedLastSeq: jsInfo.state.last_seq,
        lastSeq: stats.lastSeq,
      },
      memory: {
        rssStartMiB: MiB(start.rss),
        rssEndMiB: MiB(end.rss),
        heapStartMiB: MiB(start.heapUsed),
        heapEndMiB: MiB(end.heapUsed),
        samplesRssMiB: samplesRss,
      },
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** One JetStream API request on a short-lived connection. */
async function admin(servers: string[], subject: string): Promise<unknown> {
  const nc = await connect({ servers });
  try {
    return (await nc.request(subject, '{}', { timeout: 5_000 })).json();
  } finally {
    await nc.close();
  }
}

/** What must be zero or true for the soak to pass. */
export function soakProblems(r: SoakReport): string[] {
  const problems: string[] = [];
  if (r.duplicatesExecuted !== 0) problems.push(`${r.duplicatesExecuted} requests executed twice`);
  if (r.audit.gaps !== 0) problems.push(`${r.audit.gaps} audit gap records`);
  if (!r.audit.verified) problems.push(`audit does not verify: ${r.audit.firstBad}`);
  if (r.audit.lastSeq < r.audit.capturedLastSeq) problems.push(`audit at ${r.audit.lastSeq}, capture at ${r.audit.capturedLastSeq}`);
  if (r.unexplained.count !== 0) problems.push(`${r.unexplained.count} unexplained errors: ${r.unexplained.samples.join('; ')}`);
  return problems;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '2' },
      'fault-every': { type: 'string', default: '15' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('Usage: npx tsx bench/soak.ts [--minutes 2] [--fault-every 15] [--json]');
    process.exit(0);
  }
  const report = await runSoak({
    minutes: Number(values.minutes),
    faultEverySeconds: Number(values['fault-every']),
    log: values.json ? undefined : (line) => console.log(line),
  });
  const problems = soakProblems(report);
  if (values.json) console.log(JSON.stringify({ ...report, problems }));
  else {
    const rows: [string, string][] = [
      ['minutes of traffic with faults', String(report.minutes)],
      ['faults', report.faults.map((f) => f.kind).join(', ')],
      ['requests ok', String(report.requests.ok)],
      ['requests failed (by code)', JSON.stringify(report.requests.failed)],
      ['one-way notes sent / received', `${report.notes.sent} / ${report.notes.received}`],
      ['trust reports sent / applied', `${report.trustReports.sent} / ${report.trustReports.applied}`],
      ['duplicates executed', String(report.duplicatesExecuted)],
      ['unexplained errors', String(report.unexplained.count)],
      ['client reconnect after a fault (ms)', report.reconnectMs.join(', ')],
      ['audit records / gaps / outages', `${report.audit.records} / ${report.audit.gaps} / ${report.audit.outages}`],
      ['audit verifies', String(report.audit.verified)],
      ['RSS start / end (MiB)', `${report.memory.rssStartMiB} / ${report.memory.rssEndMiB}`],
      ['heap start / end (MiB)', `${report.memory.heapStartMiB} / ${report.memory.heapEndMiB}`],
      ['RSS samples every 10 s (MiB)', report.memory.samplesRssMiB.join(' ')],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    if (problems.length > 0) console.log(`PROBLEMS: ${problems.join('; ')}`);
  }
  process.exit(problems.length === 0 ? 0 : 1);
}
