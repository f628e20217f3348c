/**
 * Child process of bench/signed-throughput.ts: one process plays the sender,
 * another the receiver, so publisher and subscriber never share an event loop
 * (or a core, when the OS can help it). The parent drives rounds over the IPC
 * channel; see the `Command` and `PeerEvent` types. Not meant to be run by hand.
 *
 *   node --import tsx bench/lib/peer.ts sender|receiver
 */
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { joinMesh, type Agent } from '@trustmesh/client';
import { generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { cryptoFixture, measureSign, measureVerify, type CryptoFixture, type LoopResult } from './crypto.ts';

export type Role = 'sender' | 'receiver';

/** Parent -> child. Every round has an `id`; replies carry it back. */
export type Command =
  | { op: 'raw-recv'; id: number; url: string; subject: string; count: number; size: number; ackEvery: number }
  | { op: 'raw-send'; id: number; url: string; subject: string; count: number; size: number; window: number; batch: number }
  | { op: 'agent-recv'; id: number; url: string; mesh: string; count: number; size: number; ackEvery: number; verifyWorkers?: number }
  | { op: 'agent-send'; id: number; url: string; mesh: string; to: string; count: number; size: number; window: number; batch: number }
  /** Diagnostic: frames signed (fresh, unique) before the clock starts, then published as raw bytes. */
  | { op: 'presigned-send'; id: number; url: string; mesh: string; to: string; count: number; size: number; window: number; batch: number }
  /** Receiver progress, relayed by the parent to the sender: flow control. */
  | { op: 'credit'; id: number; n: number }
  /** Run the raw Ed25519 sign and verify loops (1a, 1b) for `ms` each, here. */
  | { op: 'crypto'; id: number; payload: number; ms: number }
  /** Give up the current round (stall): the receiver reports what it has, the sender stops. */
  | { op: 'stop'; id: number }
  | { op: 'exit' };

export interface ReceiveResult {
  /** Distinct sequence numbers received. */
  unique: number;
  /** Deliveries of a sequence number already seen. */
  duplicates: number;
  /** Payloads that were not what the sender sent (wrong type, size or sequence number). */
  malformed: number;
  /** ms between the first and the last receipt (performance.now in the receiver). */
  spanMs: number;
  /** (unique - 1) / span: the receiver-side rate. */
  rate: number;
  /** Event-loop utilization of the receiver between first and last receipt (1 = saturated). */
  elu: number;
  /** CPU time (user + system, all threads) of the receiver process over the same span, ms. */
  cpuMs: number;
  /** Agent only: frames refused by the receiver, by reason (only non-zero reasons). */
  rejected?: Record<string, number>;
  rejectedTotal?: number;
  /** Agent only: frames the receiver verified and accepted (presence included). */
  accepted?: number;
  handlerErrors?: number;
  unhandled?: number;
  stopped: boolean;
}

export interface SendResult {
  sent: number;
  /** ms from the first publish to the last flush. */
  spanMs: number;
  rate: number;
  /** Event-loop utilization of the sender over the same span. */
  elu: number;
  /** CPU time (user + system, all threads) of the sender process over the same span, ms. */
  cpuMs: number;
  /** presigned-send only: ms spent signing the frames before the clock started. */
  presignMs?: number;
  stopped: boolean;
}

/** Child -> parent. */
export type PeerEvent =
  | { ev: 'hello'; role: Role; pid: number }
  | { ev: 'ready'; id: number; did?: string }
  | { ev: 'progress'; id: number; n: number }
  | { ev: 'received'; id: number; result: ReceiveResult }
  | { ev: 'sent'; id: number; result: SendResult }
  | { ev: 'crypto'; id: number; sign: LoopResult; verify: LoopResult }
  | { ev: 'error'; id?: number; message: string };

const role = process.argv[2] as Role;
if ((role !== 'sender' && role !== 'receiver') || typeof process.send !== 'function') {
  console.error('bench/lib/peer.ts is started by bench/signed-throughput.ts (needs an IPC channel and a role)');
  process.exit(2);
}

const tell = (event: PeerEvent): void => {
  if (process.connected) process.send!(event);
};

// Parent gone (finished, crashed or killed): nothing left to do here.
process.on('disconnect', () => process.exit(0));
const fail = (err: unknown) => {
  tell({ ev: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  setTimeout(() => process.exit(1), 50).unref();
};
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

/** Payload of message `seq`: the sequence number big-endian in the first 4 bytes, fixed random filler after. */
const cpuMsSince = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

function payloadFiller(size: number): Uint8Array {
  const buf = new Uint8Array(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 131 + 7) & 0xff;
  return buf;
}

// ---------------------------------------------------------------- receiver

interface Tracker {
  id: number;
  count: number;
  size: number;
  ackEvery: number;
  seen: Uint8Array;
  unique: number;
  duplicates: number;
  malformed: number;
  first: number;
  last: number;
  elu0: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  elu: number;
  cpu0: NodeJS.CpuUsage | undefined;
  cpuMs: number;
  finish: (stopped: boolean) => void;
  done: boolean;
}

function newTracker(id: number, count: number, size: number, ackEvery: number, finish: (t: Tracker, stopped: boolean) => void): Tracker {
  const t: Tracker = {
    id,
    count,
    size,
    ackEvery,
    seen: new Uint8Array(count),
    unique: 0,
    duplicates: 0,
    malformed: 0,
    first: 0,
    last: 0,
    elu0: undefined,
    elu: 0,
    cpu0: undefined,
    cpuMs: 0,
    finish: (stopped) => {
      if (t.done) return;
      t.done = true;
      if (t.elu0 !== undefined) t.elu = performance.eventLoopUtilization(t.elu0).utilization;
      if (t.cpu0 !== undefined) t.cpuMs = cpuMsSince(t.cpu0);
      finish(t, stopped);
    },
    done: false,
  };
  return t;
}

/** Called for every delivered payload; returns nothing, records everything. */
function track(t: Tracker, data: unknown): void {
  if (t.done) return;
  if (t.unique === 0 && t.duplicates === 0 && t.malformed === 0) {
    t.first = performance.now();
    t.elu0 = performance.eventLoopUtilization();
    t.cpu0 = process.cpuUsage();
  }
  if (!(data instanceof Uint8Array) || data.length !== t.size) {
    t.malformed++;
    return;
  }
  const seq = ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0;
  if (seq >= t.count) {
    t.malformed++;
    return;
  }
  if (t.seen[seq] !== 0) {
    t.duplicates++;
    return;
  }
  t.seen[seq] = 1;
  t.unique++;
  // The clock is read for the last message (and every 256th, for a stalled round), not for each one.
  if ((t.unique & 255) === 0 || t.unique === t.count) t.last = performance.now();
  if (t.unique % t.ackEvery === 0 || t.unique === t.count) tell({ ev: 'progress', id: t.id, n: t.unique });
  if (t.unique === t.count) t.finish(false);
}

function receiveResult(t: Tracker, stopped: boolean): ReceiveResult {
  const spanMs = t.last - t.first;
  return {
    unique: t.unique,
    duplicates: t.duplicates,
    malformed: t.malformed,
    spanMs,
    rate: t.unique > 1 && spanMs > 0 ? ((t.unique - 1) * 1000) / spanMs : 0,
    elu: t.elu,
    cpuMs: t.cpuMs,
    stopped,
  };
}

let current: Tracker | undefined;

async function rawReceive(cmd: Extract<Command, { op: 'raw-recv' }>): Promise<void> {
  const nc = await connect({ servers: cmd.url, name: 'bench-raw-sub' });
  let sub: Subscription | undefined;
  const closed = new Promise<void>((resolve) => {
    current = newTracker(cmd.id, cmd.count, cmd.size, cmd.ackEvery, (t, stopped) => {
      const result = receiveResult(t, stopped);
      sub?.unsubscribe();
      void nc.close().finally(() => {
        tell({ ev: 'received', id: cmd.id, result });
        resolve();
      });
    });
  });
  const t = current!;
  sub = nc.subscribe(cmd.subject, {
    callback: (err, msg) => {
      if (err === null) track(t, msg.data);
    },
  });
  await nc.flush(); // the server knows the subscription before the sender starts
  tell({ ev: 'ready', id: cmd.id });
  await closed;
}

async function agentReceive(cmd: Extract<Command, { op: 'agent-recv' }>): Promise<void> {
  let agent: Agent | undefined;
  const left = new Promise<void>((resolve) => {
    current = newTracker(cmd.id, cmd.count, cmd.size, cmd.ackEvery, (t, stopped) => {
      const result = receiveResult(t, stopped);
      const stats = agent!.stats();
      result.rejected = Object.fromEntries(Object.entries(stats.rejected).filter((e): e is [string, number] => (e[1] ?? 0) > 0));
      result.rejectedTotal = stats.rejectedTotal;
      result.accepted = stats.accepted;
      result.handlerErrors = stats.handlerErrors;
      result.unhandled = stats.unhandled;
      void agent!.leave().finally(() => {
        tell({ ev: 'received', id: cmd.id, result });
        resolve();
      });
    });
  });
  const t = current!;
  agent = await joinMesh({
    mesh: cmd.mesh,
    name: 'bench-receiver',
    servers: cmd.url,
    ...(cmd.verifyWorkers !== undefined && { verifyWorkers: cmd.verifyWorkers }),
  });
  agent.handle('bench', (data) => {
    track(t, data);
  });
  tell({ ev: 'ready', id: cmd.id, did: agent.did });
  await left;
}

// ---------------------------------------------------------------- sender

let credit = { id: -1, n: 0, stop: false, wake: undefined as (() => void) | undefined };

/**
 * Publishes `count` messages: at most `window` ahead of what the receiver has
 * acknowledged, in batches of `batch`, with `await nc.flush()` after each
 * batch, so neither the client's buffer nor the server's pending bytes for
 * the subscriber grow without bound (no slow-consumer disconnects).
 */
async function pump(
  id: number,
  nc: NatsConnection,
  count: number,
  window: number,
  batch: number,
  publishOne: (seq: number) => void,
): Promise<SendResult> {
  credit = { id, n: 0, stop: false, wake: undefined };
  const c = credit;
  let sent = 0;
  const start = performance.now();
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  while (sent < count && !c.stop) {
    while (sent - c.n >= window && !c.stop) await new Promise<void>((resolve) => (c.wake = resolve));
    if (c.stop) break;
    const end = Math.min(count, sent + batch, c.n + window);
    for (; sent < end; sent++) publishOne(sent);
    await nc.flush();
  }
  const spanMs = performance.now() - start;
  const elu = performance.eventLoopUtilization(elu0).utilization;
  return { sent, spanMs, rate: (sent * 1000) / spanMs, elu, cpuMs: cpuMsSince(cpu0), stopped: c.stop };
}

function writeSeq(buf: Uint8Array, seq: number): void {
  buf[0] = seq >>> 24;
  buf[1] = (seq >>> 16) & 0xff;
  buf[2] = (seq >>> 8) & 0xff;
  buf[3] = seq & 0xff;
}

async function rawSend(cmd: Extract<Command, { op: 'raw-send' }>): Promise<void> {
  const nc = await connect({ servers: cmd.url, name: 'bench-raw-pub' });
  try {
    const filler = payloadFiller(cmd.size);
    // A fresh buffer per message, as a signed frame is: nats.js keeps a reference
    // to the payload until it writes to the socket, so one buffer can't be rewritten.
    const result = await pump(cmd.id, nc, cmd.count, cmd.window, cmd.batch, (seq) => {
      const payload = filler.slice();
      writeSeq(payload, seq);
      nc.publish(cmd.subject, payload);
    });
    tell({ ev: 'sent', id: cmd.id, result });
  } finally {
    await nc.close();
  }
}

async function agentSend(cmd: Extract<Command, { op: 'agent-send' }>): Promise<void> {
  // Own connection, so the pump can flush it; the agent signs and publishes through it.
  const nc = await connect({ servers: cmd.url, name: 'bench-agent-sender' });
  try {
    const agent = await joinMesh({ mesh: cmd.mesh, name: 'bench-sender', connection: nc });
    const payload = payloadFiller(cmd.size);
    // Every send() builds, encodes and signs a fresh frame (new id, iat); the
    // payload bytes are packed into it at send() time, so rewriting them is safe.
    const result = await pump(cmd.id, nc, cmd.count, cmd.window, cmd.batch, (seq) => {
      writeSeq(payload, seq);
      agent.send(cmd.to, 'bench', payload);
    });
    await agent.leave();
    tell({ ev: 'sent', id: cmd.id, result });
  } finally {
    await nc.close();
  }
}

/**
 * Diagnostic for the receiver alone: the same frames a sender Agent would
 * send (own key, fresh id and iat, the payload with its sequence number), all
 * signed before the clock starts, so the sender's signing does not compete
 * with the receiver for a core. Nothing is reused; the receiver verifies
 * every frame exactly as in the live run.
 */
async function presignedSend(cmd: Extract<Command, { op: 'presigned-send' }>): Promise<void> {
  const nc = await connect({ servers: cmd.url, name: 'bench-presigned-sender' });
  try {
    const key = generateKey();
    const to = cmd.to.slice('did:key:'.length);
    const subject = subjects.message(cmd.mesh, to, key.agentId);
    const payload = payloadFiller(cmd.size);
    const t0 = performance.now();
    const frames: Uint8Array[] = new Array(cmd.count);
    for (let seq = 0; seq < cmd.count; seq++) {
      writeSeq(payload, seq);
      frames[seq] = signFrame(key, { sub: subject, typ: 'bench', data: payload, aud: cmd.to }).bytes;
    }
    const presignMs = performance.now() - t0;
    // Announce the key on presence first, as a sender agent would: receivers serve known peers
    // first and give unknown keys only a small verification budget.
    const presence = subjects.presence(cmd.mesh, key.agentId);
    const join = { status: 'join', name: 'bench-presigned', version: '0.0.0', capabilities: [] };
    nc.publish(presence, signFrame(key, { sub: presence, typ: 'tm.presence', data: join }).bytes);
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await pump(cmd.id, nc, cmd.count, cmd.window, cmd.batch, (seq) => {
      nc.publish(subject, frames[seq]!);
    });
    result.presignMs = presignMs;
    tell({ ev: 'sent', id: cmd.id, result });
  } finally {
    await nc.close();
  }
}

// ---------------------------------------------------------------- dispatch

let fixture: { payload: number; f: CryptoFixture } | undefined;

const run = (id: number, job: Promise<void>) =>
  job.catch((err: unknown) => tell({ ev: 'error', id, message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));

process.on('message', (cmd: Command) => {
  switch (cmd.op) {
    case 'raw-recv':
      void run(cmd.id, rawReceive(cmd));
      break;
    case 'agent-recv':
      void run(cmd.id, agentReceive(cmd));
      break;
    case 'raw-send':
      void run(cmd.id, rawSend(cmd));
      break;
    case 'agent-send':
      void run(cmd.id, agentSend(cmd));
      break;
    case 'presigned-send':
      void run(cmd.id, presignedSend(cmd));
      break;
    case 'crypto': {
      fixture = fixture?.payload === cmd.payload ? fixture : { payload: cmd.payload, f: cryptoFixture(cmd.payload) };
      const sign = measureSign(fixture.f, cmd.ms);
      const verify = measureVerify(fixture.f, cmd.ms);
      tell({ ev: 'crypto', id: cmd.id, sign, verify });
      break;
    }
    case 'credit':
      if (cmd.id === credit.id && cmd.n > credit.n) {
        credit.n = cmd.n;
        credit.wake?.();
      }
      break;
    case 'stop':
      if (role === 'receiver' && current?.id === cmd.id) current.finish(true);
      if (role === 'sender' && credit.id === cmd.id) {
        credit.stop = true;
        credit.wake?.();
      }
      break;
    case 'exit':
      // A normal exit, so `--cpu-prof` profiles get written.
      process.disconnect();
      process.exit(0);
  }
});

tell({ ev: 'hello', role, pid: process.pid });
