/**
 * Signed throughput benchmark (DESIGN.md §10): how close does TrustMesh's
 * signed, fully verified one-way messaging get to the machine's raw limits?
 *
 *   npx -y pnpm@10 bench                      # table
 *   npx -y pnpm@10 -s bench -- --json         # one JSON object on stdout
 *   npx tsx bench/signed-throughput.ts --help
 *
 * A benchmark, not a test: it prints numbers. It exits 1 only when something
 * went wrong (rejections, lost or duplicated messages, a crashed process), or
 * with --check when the signed/verify target is missed.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { natsServerVersion, startNatsServer, type NatsServerHandle } from '@trustmesh/embedded-nats';
import { HEADER_LENGTH } from '@trustmesh/protocol';
import { cryptoFixture, meshName, type LoopResult } from './lib/crypto.ts';
import {
  fmtInt,
  fmtRatio,
  machineBusyMs,
  ownCpuMs,
  Peer,
  procCpuMs,
  progress,
  resolveTsx,
  type Summary,
  summarize,
} from './lib/harness.ts';
import type { PeerEvent, ReceiveResult, SendResult } from './lib/peer.ts';

const TARGET_SIGNED_TO_VERIFY = 0.9; // DESIGN.md §10, issue 12
const HERE = dirname(fileURLToPath(import.meta.url));
const _PEER_FILE = join(HERE, 'lib', 'peer.ts');

// Flow control (see --help): receiver acknowledges every ACK msgs, sender stays
// at most WINDOW msgs ahead, publishing BATCH msgs between `await nc.flush()`.
const RAW_FLOW = { window: 20_000, ackEvery: 1_000, batch: 1_000 };
const E2E_FLOW = { window: 4_000, ackEvery: 250, batch: 500 };

const HELP = `Usage: npx -y pnpm@10 bench [-- flags]      (or: npx tsx bench/signed-throughput.ts [flags])

Measures, in one run on this machine, and prints the median of --rounds rounds
(with min and max):

  1a  Ed25519 sign/s     node:crypto (@trustmesh/protocol nodeEd25519, cached
                         KeyObjects), one thread, signing the exact signing input
                         of a real frame ("trustmesh/v1\\n" || body of a frame with
                         a --payload byte payload); 1024 distinct inputs, cycled.
  1b  Ed25519 verify/s   the same, verifying 1024 distinct valid signatures.
                         Both loops run in the receiver process just before each
                         signed transfer: the verify rate the signed rate is
                         compared with is that of the same process (with --pin,
                         the same CPU) at the same time.
  2   raw NATS msgs/s    core NATS pub/sub of a message as large as a signed frame
                         (same bytes on the wire, no signing, no verification),
                         publisher and subscriber in two separate processes,
                         through a private nats-server on loopback; counted at
                         the subscriber from first to last receipt.
  3   signed e2e msgs/s  TrustMesh: a sender Agent in one process sends
                         --messages one-way messages (Agent.send, --payload bytes
                         each) to a receiver Agent in another process. Every frame
                         is freshly built and signed, and fully verified by the
                         receiver (signature, issuer, subject, audience, time,
                         replay guard) before its handler runs; counted in the
                         handler from first to last receipt. Rejections, lost and
                         duplicated messages are counted and must all be 0.
  4   ratios             signed / verify (target >= ${TARGET_SIGNED_TO_VERIFY}, DESIGN.md §10: the
                         crypto should be the limit) and signed / raw NATS, both
                         of the medians; the per-round signed/verify ratio is
                         shown too (each round measures both back to back).

Diagnostics (to see what the limit is, not targets):
  receiver alone         as 3, but the sender signs all frames (fresh, unique,
                         same size) before the clock starts and then only
                         publishes them: the receiver Agent's own ceiling, with
                         no signing process competing for the cores.
  cpu us/msg             CPU time (user+system) per delivered message of the
                         sender, the nats-server (/proc), the receiver and this
                         process (relaying flow control), over each transfer.
                         With N cores, N x 1e6 / total is the rate at which the
                         machine is full. "non-crypto work" = receiver CPU/msg
                         minus the CPU of one verify in loop 1b.
  event loop             event-loop utilization during each transfer; 1.00 =
                         that process never waited (it, or the CPU, was the limit).
  other work             machine-wide busy CPU (/proc/stat) minus this benchmark's
                         own processes, over the measured rounds, in cores. Above
                         ~0.2 the numbers are disturbed: re-run on a quiet machine.

Each round runs 2, 1a, 1b, 3 and the diagnostic in turn, so machine noise hits
all of them alike; the load average is printed, since other work on the machine
lowers 2 and 3 (three busy processes share the cores) more than 1 (one thread).
Flow control, so the receiver is never a NATS slow consumer: it reports progress
every ${E2E_FLOW.ackEvery} (raw: ${RAW_FLOW.ackEvery}) msgs, the sender stays at most ${E2E_FLOW.window} (raw: ${RAW_FLOW.window}) msgs
ahead and awaits nc.flush() after every ${E2E_FLOW.batch} (raw: ${RAW_FLOW.batch}).

Flags:
  --rounds N          measured rounds (default 5)
  --warmup N          unreported warm-up rounds before them (default 1)
  --messages N        signed messages per e2e round (default 20000)
  --raw-messages N    messages per raw NATS round (default 200000)
  --payload BYTES     payload size (default 256)
  --crypto-ms MS      duration of each sign and verify measurement (default 1000)
  --timeout S         give up a round after S seconds without progress (default 30)
  --profile DIR       run the sender and receiver processes with --cpu-prof,
                      writing .cpuprofile files to DIR/sender and DIR/receiver
                      (one per thread; the main thread's is the largest)
  --pin               Linux: pin the receiver to the last CPU and the sender and
                      nats-server to the others (taskset), so the scheduler does
                      not put them on one core; less spread, the receiver's own
                      limit. Default: unpinned, as a deployment would run.
  --check             also exit 1 when signed/verify is below ${TARGET_SIGNED_TO_VERIFY}
  --json              print one JSON object on stdout instead of the table
                      (progress goes to stderr; use \`pnpm -s\` to keep pnpm's
                      own banner off stdout)
  -h, --help          this text

Exit code: 0 ok; 1 something failed (rejections, lost or duplicated messages,
a process or the server died, a round stalled; with --check, target missed);
2 bad flags. The nats-server (a private one on a free port, never 4222) and the
child processes are stopped on exit, on error and on SIGINT/SIGTERM.
`;

// ---------------------------------------------------------------- flags

interface Options {
  rounds: number;
  warmup: number;
  messages: number;
  rawMessages: number;
  payload: number;
  cryptoMs: number;
  timeoutS: number;
  profile: string | undefined;
  pin: boolean;
  check: boolean;
  json: boolean;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  // `pnpm bench -- --json` may hand the script a literal `--`.
  const args = argv.filter((a, i) => !(a === '--' && i === 0));
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      messages: { type: 'string' },
      'raw-messages': { type: 'string' },
      payload: { type: 'string' },
      'crypto-ms': { type: 'string' },
      timeout: { type: 'string' },
      profile: { type: 'string' },
      pin: { type: 'boolean' },
      check: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
  const int = (name: string, value: string | undefined, fallback: number, min: number, max: number): number => {
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be an integer (got ${JSON.stringify(value)})`);
    const n = Number(value);
    if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max} (got ${n})`);
    return n;
  };
  if (values.profile === '') throw new UsageError('--profile needs a directory');
  return {
    rounds: int('rounds', values.rounds, 5, 1, 1000),
    warmup: int('warmup', values.warmup, 1, 0, 100),
    messages: int('messages', values.messages, 20_000, 2, 100_000_000),
    rawMessages: int('raw-messages', values['raw-messages'], 200_000, 2, 1_000_000_000),
    payload: int('payload', values.payload, 256, 4, 512 * 1024),
    cryptoMs: int('crypto-ms', values['crypto-ms'], 1000, 10, 600_000),
    timeoutS: int('timeout', values.timeout, 30, 1, 3600),
    profile: values.profile === undefined ? undefined : resolve(values.profile),
    pin: values.pin ?? false,
    check: values.check ?? false,
    json: values.json ?? false,
  };
}

// ---------------------------------------------------------------- one transfer (raw or signed)

interface Transfer {
  received: ReceiveResult;
  sent: SendResult;
  stalled: boolean;
  /** CPU of the nats-server from the sender's start to both results (Linux /proc; undefined elsewhere). */
  serverCpuMs: number | undefined;
  /** CPU of this process (the relay of flow-control acks) over the same time. */
  parentCpuMs: number;
}

let roundCounter = 0;

type TransferKind = 'raw' | 'agent' | 'presigned';

async function transfer(
  kind: TransferKind,
  sender: Peer,
  receiver: Peer,
  url: string,
  count: number,
  size: number,
  timeoutS: number,
): Promise<Transfer> {
  const id = ++roundCounter;
  const flow = kind === 'raw' ? RAW_FLOW : E2E_FLOW;
  const isReady = (e: PeerEvent): e is Extract<PeerEvent, { ev: 'ready' }> => e.ev === 'ready' && e.id === id;
  const ready = receiver.next(isReady, 30_000, 'ready', id);
  const subject = `bench.raw.${id}`;
  const mesh = meshName(id);
  receiver.send(
    kind === 'raw'
      ? { op: 'raw-recv', id, url, subject, count, size, ackEvery: flow.ackEvery }
      : { op: 'agent-recv', id, url, mesh, count, size, ackEvery: flow.ackEvery },
  );
  const { did } = await ready;

  const received = receiver.next(
    (e): e is Extract<PeerEvent, { ev: 'received' }> => e.ev === 'received' && e.id === id,
    undefined,
    'its result',
    id,
  );
  const sent = sender.next((e): e is Extract<PeerEvent, { ev: 'sent' }> => e.ev === 'sent' && e.id === id, undefined, 'its result', id);
  let lastProgress = performance.now();
  let stalled = false;
  const serverCpu0 = procCpuMs(state.server?.pid);
  const parentCpu0 = process.cpuUsage();
  // Relay the receiver's progress to the sender: that is the flow-control window.
  const offRelay = receiver.on((e) => {
    if (e.ev === 'progress' && e.id === id) {
      lastProgress = performance.now();
      sender.send({ op: 'credit', id, n: e.n });
    }
  });
  const watchdog = setInterval(() => {
    if (!stalled && performance.now() - lastProgress > timeoutS * 1000) {
      stalled = true;
      progress(`  round ${id}: no progress for ${timeoutS} s, stopping it`);
      receiver.send({ op: 'stop', id });
      sender.send({ op: 'stop', id });
    }
  }, 250);
  try {
    const common = { id, url, count, size, window: flow.window, batch: flow.batch };
    if (kind === 'raw') sender.send({ op: 'raw-send', ...common, subject });
    else sender.send({ op: kind === 'agent' ? 'agent-send' : 'presigned-send', ...common, mesh, to: did! });
    const [r, s] = await Promise.all([received, sent]);
    const serverCpu1 = procCpuMs(state.server?.pid);
    const parentCpu = process.cpuUsage(parentCpu0);
    return {
      received: r.result,
      sent: s.result,
      stalled,
      serverCpuMs: serverCpu0 === undefined || serverCpu1 === undefined ? undefined : serverCpu1 - serverCpu0,
      parentCpuMs: (parentCpu.user + parentCpu.system) / 1000,
    };
  } finally {
    clearInterval(watchdog);
    offRelay();
  }
}

// ---------------------------------------------------------------- main

interface RoundRecord {
  sign: LoopResult;
  verify: LoopResult;
  raw: Transfer;
  signed: Transfer;
  presigned: Transfer;
}

const state: { server?: NatsServerHandle; peers: Peer[]; shuttingDown?: Promise<void> } = { peers: [] };

function shutdown(): Promise<void> {
  state.shuttingDown ??= (async () => {
    await Promise.all(state.peers.map((p) => p.stop().catch(() => undefined)));
    await state.server?.stop().catch(() => undefined);
  })();
  return state.shuttingDown;
}

let interrupted: number | undefined;
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(signal, () => {
    if (interrupted !== undefined) return;
    interrupted = code;
    progress(`${signal}: stopping the server and child processes`);
    void shutdown().finally(() => process.exit(code));
  });
}

/** CPU µs per delivered message, by process. */
interface CpuBudget {
  sender: number;
  natsServer: number | undefined;
  receiver: number;
  benchParent: number;
  total: number;
  /** 1e6 x cores / total: the rate at which this much CPU per message fills every core. */
  ceilingMsgsPerSec: number;
}

function cpuBudget(t: Transfer, cores: number): CpuBudget {
  const n = Math.max(1, t.received.unique);
  const sender = (t.sent.cpuMs * 1000) / n;
  const natsServer = t.serverCpuMs === undefined ? undefined : (t.serverCpuMs * 1000) / n;
  const receiver = (t.received.cpuMs * 1000) / n;
  const benchParent = (t.parentCpuMs * 1000) / n;
  const total = sender + (natsServer ?? 0) + receiver + benchParent;
  return { sender, natsServer, receiver, benchParent, total, ceilingMsgsPerSec: (1e6 * cores) / total };
}

function medianBudget(budgets: CpuBudget[]): Record<keyof CpuBudget, number | undefined> {
  const med = (f: (b: CpuBudget) => number | undefined) => {
    const xs = budgets.map(f).filter((x): x is number => x !== undefined);
    return xs.length === 0 ? undefined : summarize(xs).median;
  };
  return {
    sender: med((b) => b.sender),
    natsServer: med((b) => b.natsServer),
    receiver: med((b) => b.receiver),
    benchParent: med((b) => b.benchParent),
    total: med((b) => b.total),
    ceilingMsgsPerSec: med((b) => b.ceilingMsgsPerSec),
  };
}

async function main(): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\nRun with --help for the flags.\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const o = options;
  const failures: string[] = [];

  const cpus = os.cpus();
  const cores = os.availableParallelism?.() ?? cpus.length;
  const machine = {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores,
    node: process.version,
    natsServer: (await natsServerVersion().catch(() => undefined)) ?? 'unknown',
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((n) => Number(n.toFixed(2))),
    loadAverageAtEnd: [] as number[],
    /** Average cores busy with other work than this benchmark while it measured (Linux); see --help. */
    otherLoadCores: undefined as number | undefined,
    msgpackrNative: isNativeAccelerationEnabled,
  };

  const frameBytes = cryptoFixture(o.payload).frameBytes;
  const presignedMessages = Math.min(o.messages, PRESIGNED_MAX);
  progress(`frame: ${frameBytes} bytes (${HEADER_LENGTH} header + ${frameBytes - HEADER_LENGTH} body, payload ${o.payload})`);

  progress('starting nats-server and the sender/receiver processes');
  state.server = await startNatsServer({ jetstream: false });
  if (state.server.port === 4222) throw new Error('embedded nats-server picked port 4222; refusing to use the shared server port');
  const url = state.server.url;
  const tsx = resolveTsx();
  const sender = new Peer('sender', tsx, o.profile);
  const receiver = new Peer('receiver', tsx, o.profile);
  state.peers.push(sender, receiver);
  const isHello = (e: PeerEvent): e is Extract<PeerEvent, { ev: 'hello' }> => e.ev === 'hello';
  await Promise.all([sender.next(isHello, 60_000, 'hello'), receiver.next(isHello, 60_000, 'hello')]);
  progress(`server ${url} (pid ${state.server.pid}), sender pid ${sender.child.pid}, receiver pid ${receiver.child.pid}`);
  if (o.pin) {
    if (cores < 2) throw new Error('--pin needs at least 2 CPUs');
    const last = String(cores - 1);
    const others = cores === 2 ? '0' : `0-${cores - 2}`;
    for (const [pid, cpus] of [
      [receiver.child.pid, last],
      [sender.child.pid, others],
      [state.server.pid, others],
    ] as const) {
      // -a: every thread (libuv, V8 and the Go runtime's threads too).
      const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`--pin: taskset failed for pid ${pid}: ${r.error?.message ?? r.stderr.trim()}`);
    }
    progress(`pinned: receiver on CPU ${last}, sender and nats-server on CPU ${others}`);
  }

  const check = (label: string, name: string, t: Transfer, expected: number) => {
    const lost = expected - t.received.unique;
    if (lost > 0) failures.push(`${label}: ${name}: ${lost} of ${expected} messages lost${t.stalled ? ' (stalled)' : ''}`);
    if (t.received.duplicates > 0) failures.push(`${label}: ${name}: ${t.received.duplicates} duplicates`);
    if (t.received.malformed > 0) failures.push(`${label}: ${name}: ${t.received.malformed} malformed payloads`);
    if ((t.received.rejectedTotal ?? 0) > 0)
      failures.push(`${label}: ${name}: ${t.received.rejectedTotal} frames rejected ${JSON.stringify(t.received.rejected)}`);
    if ((t.received.handlerErrors ?? 0) > 0) failures.push(`${label}: ${name}: ${t.received.handlerErrors} handler errors`);
    if ((t.received.unhandled ?? 0) > 0) failures.push(`${label}: ${name}: ${t.received.unhandled} unhandled frames`);
  };

  const records: RoundRecord[] = [];
  const total = o.warmup + o.rounds;
  const ownPids = [state.server.pid, sender.child.pid, receiver.child.pid];
  let other0: { wall: number; busy: number | undefined; own: number | undefined } | undefined;
  for (let r = 0; r < total; r++) {
    const warm = r < o.warmup;
    if (r === o.warmup) other0 = { wall: performance.now(), busy: machineBusyMs(), own: ownCpuMs(ownPids) };
    const label = warm ? `warm-up ${r + 1}/${o.warmup}` : `round ${r - o.warmup + 1}/${o.rounds}`;
    const raw = await transfer('raw', sender, receiver, url, o.rawMessages, frameBytes, o.timeoutS);
    check(label, 'raw NATS', raw, o.rawMessages);
    progress(`${label}: raw NATS ${fmtInt(raw.received.rate)} msgs/s (${raw.received.unique}/${o.rawMessages})`);

    // In the receiver process, right before the signed transfer: same process, same moment (and with --pin, same CPU).
    const cryptoId = ++roundCounter;
    const isCrypto = (e: PeerEvent): e is Extract<PeerEvent, { ev: 'crypto' }> => e.ev === 'crypto' && e.id === cryptoId;
    const crypto = receiver.next(isCrypto, 60_000 + 4 * o.cryptoMs, 'the Ed25519 loops', cryptoId);
    receiver.send({ op: 'crypto', id: cryptoId, payload: o.payload, ms: o.cryptoMs });
    const { sign, verify: v } = await crypto;
    if (sign.failures > 0) failures.push(`${label}: ${sign.failures} signatures of the wrong length`);
    if (v.failures > 0) failures.push(`${label}: ${v.failures} valid signatures failed to verify`);
    progress(`${label}: sign ${fmtInt(sign.rate)}/s, verify ${fmtInt(v.rate)}/s (in the receiver process)`);

    const signed = await transfer('agent', sender, receiver, url, o.messages, o.payload, o.timeoutS);
    check(label, 'signed e2e', signed, o.messages);
    const b = cpuBudget(signed, cores);
    progress(
      `${label}: signed e2e ${fmtInt(signed.received.rate)} msgs/s (${signed.received.unique}/${o.messages} received, ` +
        `${signed.received.rejectedTotal ?? 0} rejected; cpu us/msg: sender ${b.sender.toFixed(0)}, server ${b.natsServer?.toFixed(0) ?? '?'}, receiver ${b.receiver.toFixed(0)})`,
    );

    const presigned = await transfer('presigned', sender, receiver, url, presignedMessages, o.payload, o.timeoutS);
    check(label, 'pre-signed', presigned, presignedMessages);
    progress(
      `${label}: receiver alone (pre-signed) ${fmtInt(presigned.received.rate)} msgs/s (${presigned.received.unique}/${presignedMessages})`,
    );

    if (!warm) records.push({ sign, verify: v, raw, signed, presigned });
  }
  machine.loadAverageAtEnd = os.loadavg().map((n) => Number(n.toFixed(2)));
  const busy1 = machineBusyMs();
  const own1 = ownCpuMs(ownPids);
  if (other0?.busy !== undefined && other0.own !== undefined && busy1 !== undefined && own1 !== undefined) {
    const other = busy1 - other0.busy - (own1 - other0.own);
    machine.otherLoadCores = Number(Math.max(0, other / (performance.now() - other0.wall)).toFixed(2));
  }

  const sign = summarize(records.map((r) => r.sign.rate));
  const verify = summarize(records.map((r) => r.verify.rate));
  const raw = summarize(records.map((r) => r.raw.received.rate));
  const signed = summarize(records.map((r) => r.signed.received.rate));
  const presigned = summarize(records.map((r) => r.presigned.received.rate));
  const perRound = summarize(records.map((r) => r.signed.received.rate / r.verify.rate));
  const signedToVerify = signed.median / verify.median;
  const signedToRaw = signed.median / raw.median;
  const met = signedToVerify >= TARGET_SIGNED_TO_VERIFY;
  if (o.check && !met) failures.push(`signed/verify ${fmtRatio(signedToVerify)} is below the target ${TARGET_SIGNED_TO_VERIFY} (--check)`);

  const sumOf = (f: (r: RoundRecord) => number) => records.reduce((a, r) => a + f(r), 0);
  const rejectedByReason: Record<string, number> = {};
  for (const r of records) {
    for (const t of [r.signed, r.presigned]) {
      for (const [k, n] of Object.entries(t.received.rejected ?? {})) rejectedByReason[k] = (rejectedByReason[k] ?? 0) + n;
    }
  }
  const integrity = {
    signedMessages: o.messages * records.length,
    rejections: sumOf((r) => r.signed.received.rejectedTotal ?? 0),
    rejectedByReason,
    lost: sumOf((r) => o.messages - r.signed.received.unique),
    duplicates: sumOf((r) => r.signed.received.duplicates),
    presignedMessages: presignedMessages * records.length,
    presignedRejections: sumOf((r) => r.presigned.received.rejectedTotal ?? 0),
    presignedLost: sumOf((r) => presignedMessages - r.presigned.received.unique),
    rawMessages: o.rawMessages * records.length,
    rawLost: sumOf((r) => o.rawMessages - r.raw.received.unique),
    rawDuplicates: sumOf((r) => r.raw.received.duplicates),
  };
  // CPU cost of one verify in this run, to split the receiver's CPU per message.
  const verifyUs = summarize(records.map((r) => r.verify.cpuUs)).median;
  const signedCpu = medianBudget(records.map((r) => cpuBudget(r.signed, cores)));
  const presignedCpu = medianBudget(records.map((r) => cpuBudget(r.presigned, cores)));
  const rawCpu = medianBudget(records.map((r) => cpuBudget(r.raw, cores)));
  const diagnostics = {
    verifyCpuUsPerOp: verifyUs,
    signCpuUsPerOp: summarize(records.map((r) => r.sign.cpuUs)).median,
    cpuUsPerMsg: { signed: signedCpu, presigned: presignedCpu, raw: rawCpu },
    receiverNonCryptoUsPerMsg: signedCpu.receiver === undefined ? undefined : signedCpu.receiver - verifyUs,
    eventLoopUtilization: {
      signedReceiver: summarize(records.map((r) => r.signed.received.elu)).median,
      signedSender: summarize(records.map((r) => r.signed.sent.elu)).median,
      presignedReceiver: summarize(records.map((r) => r.presigned.received.elu)).median,
      rawSubscriber: summarize(records.map((r) => r.raw.received.elu)).median,
      rawPublisher: summarize(records.map((r) => r.raw.sent.elu)).median,
    },
  };

  const ok = failures.length === 0;
  const report: Report = {
    benchmark: 'trustmesh/signed-throughput',
    ok,
    failures,
    machine,
    config: {
      rounds: o.rounds,
      warmup: o.warmup,
      messages: o.messages,
      presignedMessages,
      rawMessages: o.rawMessages,
      payloadBytes: o.payload,
      frameBytes,
      cryptoMs: o.cryptoMs,
      pinned: o.pin,
      flow: { raw: RAW_FLOW, signed: E2E_FLOW },
      natsServer: { url, jetstream: false },
    },
    results: {
      ed25519SignPerSec: sign,
      ed25519VerifyPerSec: verify,
      rawNatsMsgsPerSec: raw,
      signedMsgsPerSec: signed,
      presignedReceiverMsgsPerSec: presigned,
    },
    ratios: {
      signedToVerify: { value: signedToVerify, target: TARGET_SIGNED_TO_VERIFY, met },
      signedToVerifyPerRound: perRound,
      signedToRawNats: { value: signedToRaw },
      presignedToVerify: { value: presigned.median / verify.median },
    },
    integrity,
    diagnostics,
  };

  if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(renderTable(report));
  return ok ? 0 : 1;
}

/** Cap on the pre-signed diagnostic: its frames must still be inside the 30 s iat window when they arrive. */
const PRESIGNED_MAX = 100_000;

interface Report {
  benchmark: string;
  ok: boolean;
  failures: string[];
  machine: {
    cpuModel: string;
    cores: number;
    node: string;
    natsServer: string;
    os: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
    otherLoadCores: number | undefined;
    msgpackrNative: boolean;
  };
  config: {
    rounds: number;
    warmup: number;
    messages: number;
    presignedMessages: number;
    rawMessages: number;
    payloadBytes: number;
    frameBytes: number;
    cryptoMs: number;
    pinned: boolean;
    flow: { raw: typeof RAW_FLOW; signed: typeof E2E_FLOW };
    natsServer: { url: string; jetstream: boolean };
  };
  results: Record<
    'ed25519SignPerSec' | 'ed25519VerifyPerSec' | 'rawNatsMsgsPerSec' | 'signedMsgsPerSec' | 'presignedReceiverMsgsPerSec',
    Summary
  >;
  ratios: {
    signedToVerify: { value: number; target: number; met: boolean };
    signedToVerifyPerRound: Summary;
    signedToRawNats: { value: number };
    presignedToVerify: { value: number };
  };
  integrity: {
    signedMessages: number;
    rejections: number;
    rejectedByReason: Record<string, number>;
    lost: number;
    duplicates: number;
    presignedMessages: number;
    presignedRejections: number;
    presignedLost: number;
    rawMessages: number;
    rawLost: number;
    rawDuplicates: number;
  };
  diagnostics: {
    verifyCpuUsPerOp: number;
    signCpuUsPerOp: number;
    cpuUsPerMsg: Record<'signed' | 'presigned' | 'raw', Record<keyof CpuBudget, number | undefined>>;
    receiverNonCryptoUsPerMsg: number | undefined;
    eventLoopUtilization: Record<string, number>;
  };
}

function renderTable(r: Report): string {
  const m = r.machine;
  const c = r.config;
  const lines: string[] = [];
  lines.push(`TrustMesh signed throughput: ${c.rounds} rounds (+${c.warmup} warm-up), median [min .. max]`);
  lines.push(`machine   ${m.cpuModel}, ${m.cores} cores, node ${m.node}, nats-server ${m.natsServer}, ${m.os}`);
  lines.push(
    `          load average ${m.loadAverageAtStart.join(' ')} at start, ${m.loadAverageAtEnd.join(' ')} at end; msgpackr native addon: ${m.msgpackrNative ? 'yes' : 'no'}`,
  );
  if (m.otherLoadCores !== undefined) {
    const noisy = m.otherLoadCores >= 0.2;
    lines.push(
      `          other work on the machine while measuring: ${m.otherLoadCores.toFixed(2)} cores on average${noisy ? ' -- NOISY: rates 2 and 3 (3 busy processes) suffer more than 1a/1b' : ''}`,
    );
  }
  lines.push(
    `frame     ${c.frameBytes} bytes = ${HEADER_LENGTH} header + ${c.frameBytes - HEADER_LENGTH} body (payload ${c.payloadBytes} bytes); ${fmtInt(c.messages)} signed msgs/round, ${fmtInt(c.rawMessages)} raw`,
  );
  lines.push(
    `processes ${c.pinned ? 'pinned (--pin): receiver on its own CPU, sender and nats-server on the other(s)' : 'not pinned (the OS schedules sender, receiver and nats-server)'}`,
  );
  lines.push('');
  const rows: [string, Summary, string][] = [
    ['1a Ed25519 sign, node:crypto, 1 thread', r.results.ed25519SignPerSec, 'ops/s'],
    ['1b Ed25519 verify, node:crypto, 1 thread', r.results.ed25519VerifyPerSec, 'ops/s'],
    [`2  raw NATS pub/sub, ${c.frameBytes} B, 2 processes`, r.results.rawNatsMsgsPerSec, 'msgs/s'],
    ['3  TrustMesh signed e2e, 2 agents/processes', r.results.signedMsgsPerSec, 'msgs/s'],
    ['   diagnostic: receiver alone (pre-signed)', r.results.presignedReceiverMsgsPerSec, 'msgs/s'],
  ];
  const w = Math.max(...rows.map(([l]) => l.length));
  const head = `${'measurement'.padEnd(w)}  ${'median'.padStart(10)}  ${'min'.padStart(10)}  ${'max'.padStart(10)}  unit`;
  lines.push(head);
  lines.push('-'.repeat(head.length + 2));
  for (const [label, s, unit] of rows) {
    lines.push(
      `${label.padEnd(w)}  ${fmtInt(s.median).padStart(10)}  ${fmtInt(s.min).padStart(10)}  ${fmtInt(s.max).padStart(10)}  ${unit}`,
    );
  }
  lines.push('');
  const sv = r.ratios.signedToVerify;
  const pr = r.ratios.signedToVerifyPerRound;
  lines.push(
    `4  signed / verify     ${fmtRatio(sv.value)}   target >= ${sv.target}: ${sv.met ? 'met' : 'NOT MET'}   (per round: median ${fmtRatio(pr.median)}, min ${fmtRatio(pr.min)}, max ${fmtRatio(pr.max)})`,
  );
  lines.push(`   signed / raw NATS   ${fmtRatio(r.ratios.signedToRawNats.value)}`);
  lines.push(`   receiver alone / verify  ${fmtRatio(r.ratios.presignedToVerify.value)}   (diagnostic)`);
  lines.push('');
  const i = r.integrity;
  const reasons = Object.entries(i.rejectedByReason)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  lines.push(
    `integrity  signed: ${fmtInt(i.signedMessages)} sent, ${i.rejections} rejected${reasons ? ` (${reasons})` : ''}, ${i.lost} lost, ${i.duplicates} duplicated; ` +
      `pre-signed: ${i.presignedRejections} rejected, ${i.presignedLost} lost; raw: ${i.rawLost} lost, ${i.rawDuplicates} duplicated`,
  );
  const d = r.diagnostics;
  const us = (x: number | undefined) => (x === undefined ? '?' : x.toFixed(1));
  const budget = (name: string, b: Record<keyof CpuBudget, number | undefined>) =>
    `${name.padEnd(11)} sender ${us(b.sender)}, nats-server ${us(b.natsServer)}, receiver ${us(b.receiver)}, bench ${us(b.benchParent)}; ` +
    `total ${us(b.total)} -> ${m.cores} cores full at ${b.ceilingMsgsPerSec === undefined ? '?' : fmtInt(b.ceilingMsgsPerSec)} msgs/s`;
  lines.push(`cpu us/msg ${budget('signed:', d.cpuUsPerMsg.signed)}`);
  lines.push(`           ${budget('pre-signed:', d.cpuUsPerMsg.presigned)}`);
  lines.push(`           ${budget('raw:', d.cpuUsPerMsg.raw)}`);
  lines.push(
    `           one verify ${us(d.verifyCpuUsPerOp)}, one sign ${us(d.signCpuUsPerOp)} (1a/1b loops); so the signed receiver's non-crypto work is ${us(d.receiverNonCryptoUsPerMsg)} us/msg`,
  );
  const e = d.eventLoopUtilization;
  lines.push(
    `event loop signed: receiver ${e.signedReceiver!.toFixed(2)}, sender ${e.signedSender!.toFixed(2)}; pre-signed receiver ${e.presignedReceiver!.toFixed(2)}; ` +
      `raw: subscriber ${e.rawSubscriber!.toFixed(2)}, publisher ${e.rawPublisher!.toFixed(2)}  (1.00 = busy all the time)`,
  );
  lines.push('');
  lines.push(r.ok ? 'result     ok' : `result     FAILED\n${r.failures.map((f) => `  - ${f}`).join('\n')}`);
  return lines.join('\n') + '\n';
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  if (interrupted === undefined) progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  exitCode = 1;
} finally {
  await shutdown();
}
process.exit(interrupted ?? exitCode);
