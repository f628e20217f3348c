/**
 * The audit service: reads the capture stream with a durable consumer, in
 * stream order; chains every message into the store; acks only after the
 * store made the batch durable; writes a gap record for every sequence the
 * stream no longer has; signs checkpoints every N records or T ms.
 */
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type AgentKey, assertMeshName } from '@trustmesh/protocol';
import { type CaptureInit, ensureCaptureStream, isNotFound } from './capture.ts';
import { type Checkpoint, checkpointSubject, signCheckpoint } from './checkpoint.ts';
import { AuditError, invalid } from './errors.ts';
import { openFileStore } from './file-store.ts';
import { createSignaturePool, defaultWorkers, type SignaturePool } from './pool.ts';
import type { AuditRecord } from './record.ts';
import { statelessVerdict, VERDICT_OK, VERDICT_UNCHECKED, verdictGivenSignature } from './stateless.ts';
import type { AuditStore, NewRecord } from './store.ts';

interface Fresh {
  seq: number;
  subject: string;
  data: Uint8Array;
  time: number;
}

interface Prepared {
  batch: JsMsg[];
  fresh: Fresh[];
  gaps: { from: number; to: number; before: number }[];
  duplicates: number;
  outages: { from: number; to: number; serverBefore: string | undefined; serverAfter: string | undefined }[];
  verdicts: string[];
}

export interface AuditServiceInit {
  mesh: string;
  /** The service's own identity: it signs checkpoints. */
  key: AgentKey;
  /** A connection to use (never closed by the service); otherwise one is opened to `servers`. */
  connection?: NatsConnection;
  servers?: string | string[];
  /** Where records go; otherwise a file store at `path`. A store passed in is not closed by `stop()`. */
  store?: AuditStore;
  path?: string;
  /** Durable consumer name; default `audit_<agent id>`. */
  consumer?: string;
  capture?: CaptureInit;
  /** Sign a checkpoint after this many new records (own checkpoints not counted); default 1000. */
  checkpointEvery?: number;
  /** ...or after this many ms with new records; default 10 000. */
  checkpointIntervalMs?: number;
  /** Publish checkpoints on the mesh (they are stored either way); default true. */
  publishCheckpoints?: boolean;
  /** Sign a last checkpoint on `stop()`; default true. */
  checkpointOnStop?: boolean;
  /** Largest batch appended at once; default 1000. */
  batchSize?: number;
  /** Signature worker threads for ingest; default one per core, 0 = this thread. */
  workers?: number;
  /**
   * Verify each frame (stateless stage) before recording it; default true. False records
   * verdict `unchecked` and leaves judging to verify: ingest then costs a hash, not an
   * Ed25519 verify, per frame.
   */
  verifyOnIngest?: boolean;
}

export interface AuditStats {
  /** Records in the store (frames, gaps and recorded checkpoints). */
  records: number;
  /** Frames recorded by this run, per verdict. */
  verdicts: Record<string, number>;
  /** Gap records written by this run and the capture messages they cover. */
  gaps: number;
  missing: number;
  /** Outage records written by this run: the server was replaced while the audit read. */
  outages: number;
  /** Redelivered messages that were already recorded (acked, not recorded again). */
  duplicates: number;
  /** Capture sequence of the last record. */
  lastSeq: number;
  checkpoints: number;
  /** Failed batches (they were not acked and come again). */
  errors: number;
}

export interface AuditEvents {
  records: (records: readonly AuditRecord[]) => void;
  gap: (gap: { from: number; to: number; position: number }) => void;
  /** The server changed under the audit (restart or failover): messages published meanwhile may never have been captured. */
  outage: (outage: {
    from: number;
    to: number;
    position: number;
    serverBefore: string | undefined;
    serverAfter: string | undefined;
  }) => void;
  checkpoint: (checkpoint: Checkpoint) => void;
  error: (error: Error) => void;
}

export interface AuditService {
  readonly mesh: string;
  readonly did: string;
  readonly stream: string;
  readonly store: AuditStore;
  stats(): AuditStats;
  on<K extends keyof AuditEvents>(event: K, listener: AuditEvents[K]): () => void;
  /** Signs a checkpoint of the current head now (undefined when nothing is new since the last one). */
  checkpoint(): Promise<Checkpoint | undefined>;
  /** Resolves once every message the capture stream held at the time of the call is recorded. */
  caughtUp(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const positiveInt = (name: string, v: number | undefined, dflt: number): number => {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw invalid(`${name} must be a positive integer`);
  return v;
};

/** Starts the audit service; resolves once the capture stream and the consumer exist and reading has begun. */
export async function startAudit(init: AuditServiceInit): Promise<AuditService> {
  assertMeshName(init.mesh);
  if (init.key === undefined || typeof init.key.sign !== 'function') throw invalid('key must be an AgentKey');
  if (init.store === undefined && (typeof init.path !== 'string' || init.path === '')) throw invalid('give a store or a path');
  const every = positiveInt('checkpointEvery', init.checkpointEvery, 1000);
  const intervalMs = positiveInt('checkpointIntervalMs', init.checkpointIntervalMs, 10_000);
  const batchSize = positiveInt('batchSize', init.batchSize, 1000);
  const nc = init.connection ?? (await connect({ servers: init.servers ?? 'nats://127.0.0.1:4222', maxReconnectAttempts: -1 }));
  let store: AuditStore | undefined;
  try {
    store = init.store ?? (await openFileStore(init.path!, { mesh: init.mesh }));
    const jsm = await jetstreamManager(nc);
    const stream = await ensureCaptureStream(jsm, init.mesh, init.capture);
    const service = new Service(init, nc, jsm, jetstream(nc), store, stream, { every, intervalMs, batchSize });
    await service.start();
    return service;
  } catch (err) {
    if (init.store === undefined) await store?.close().catch(() => undefined);
    if (init.connection === undefined) await nc.close().catch(() => undefined);
    throw err;
  }
}

class Service implements AuditService {
  readonly mesh: string;
  readonly did: string;
  readonly #key: AgentKey;
  readonly #ownSubject: string;
  readonly #consumerName: string;
  readonly #listeners = new Map<keyof AuditEvents, Set<(...args: never[]) => void>>();
  readonly #queue: JsMsg[] = [];
  readonly #outages: { from: number; to: number; serverBefore: string | undefined; serverAfter: string | undefined }[] = [];
  #serverId: string | undefined;
  /** Next capture sequence expected by the classifier (undefined: the store's next). */
  #prepNext: number | undefined;
  #prepTail: Promise<void> = Promise.resolve();
  /** Messages taken from the queue and not yet acked, oldest first. */
  readonly #failedBatches: JsMsg[] = [];
  readonly #pool: SignaturePool;
  #messages: ConsumerMessages | undefined;
  #draining: Promise<void> | undefined;
  #sinceCheckpoint = 0;
  #checkpointing: Promise<Checkpoint | undefined> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #stats: AuditStats = {
    records: 0,
    verdicts: {},
    gaps: 0,
    missing: 0,
    outages: 0,
    duplicates: 0,
    lastSeq: 0,
    checkpoints: 0,
    errors: 0,
  };

  constructor(
    private readonly init: AuditServiceInit,
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    readonly store: AuditStore,
    readonly stream: string,
    private readonly opts: { every: number; intervalMs: number; batchSize: number },
  ) {
    this.mesh = init.mesh;
    this.did = init.key.did;
    this.#key = init.key;
    this.#ownSubject = checkpointSubject(init.mesh, init.key.agentId);
    this.#consumerName = init.consumer ?? `audit_${init.key.agentId}`;
    this.#pool = createSignaturePool(init.verifyOnIngest === false ? 0 : (init.workers ?? defaultWorkers()));
  }

  async start(): Promise<void> {
    // A capture stream whose sequence is behind the log was created anew: its messages 1, 2, ...
    // would look like duplicates of records already made. Refuse rather than drop them.
    const { state } = await this.jsm.streams.info(this.stream);
    if (state.last_seq < this.store.lastSeq) {
      throw new AuditError(
        'capture_reset',
        `capture stream ${this.stream} ends at sequence ${state.last_seq} but the log already covers ${this.store.lastSeq}: ` +
          'the stream was deleted and created again. Start a new log for the new stream (keep the old one and its checkpoints).',
      );
    }
    this.#serverId = this.nc.info?.server_id;
    void this.#watchServer();
    await this.#ensureConsumer();
    const consumer = await this.js.consumers.get(this.stream, this.#consumerName);
    this.#messages = await consumer.consume({
      max_messages: Math.max(100, this.opts.batchSize * 2),
      callback: (m) => {
        this.#queue.push(m);
        this.#draining ??= this.#drain();
      },
    });
    this.#timer = setInterval(() => {
      if (this.#sinceCheckpoint > 0) void this.checkpoint().catch((err: Error) => this.#emit('error', err));
    }, this.opts.intervalMs);
    this.#timer.unref();
  }

  /**
   * A new server id after a reconnect means the server was restarted or replaced: what was
   * published while none ran never reached the capture stream, and has no sequence to
   * miss. That is written down as an outage record rather than passed over in silence.
   */
  async #watchServer(): Promise<void> {
    let downSince: number | undefined;
    for await (const s of this.nc.status()) {
      if (this.#stopped) break;
      if (s.type === 'disconnect') downSince ??= Date.now();
      else if (s.type === 'reconnect') {
        const after = this.nc.info?.server_id;
        if (after !== this.#serverId) {
          this.#outages.push({ from: downSince ?? Date.now(), to: Date.now(), serverBefore: this.#serverId, serverAfter: after });
          this.#serverId = after;
          this.#draining ??= this.#drain();
        }
        downSince = undefined;
      }
    }
  }

  /** The durable consumer delivers from the store's next sequence; a consumer ahead of the store is recreated. */
  async #ensureConsumer(): Promise<void> {
    const next = this.store.lastSeq + 1;
    try {
      const info = await this.jsm.consumers.info(this.stream, this.#consumerName);
      const clean = info.ack_floor.stream_seq === this.store.lastSeq && info.num_ack_pending === 0 && info.num_redelivered === 0;
      if (clean && info.config.ack_policy === AckPolicy.All) return;
      // The store is the truth about where reading resumes. A consumer that acked more (the store
      // was replaced), or less, or still waits for acks of messages delivered to a stopped reader
      // (they would come back only after ack_wait) is replaced by one that starts at the store's next sequence.
      await this.jsm.consumers.delete(this.stream, this.#consumerName);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await this.jsm.consumers.add(this.stream, {
      durable_name: this.#consumerName,
      // Records are appended in stream order, so one ack of the batch's last message acks the batch.
      ack_policy: AckPolicy.All,
      deliver_policy: next === 1 ? DeliverPolicy.All : DeliverPolicy.StartSequence,
      ...(next === 1 ? {} : { opt_start_seq: next }),
      ack_wait: 30_000_000_000,
      max_ack_pending: 20_000,
      max_deliver: -1,
    });
  }

  /**
   * Two batches in flight: while one is appended and synced, the next one's
   * signatures are checked on the workers. Classifying a batch (duplicates,
   * missing sequences) stays strictly in order.
   */
  async #drain(): Promise<void> {
    try {
      let next: Promise<Prepared> | undefined;
      while (next !== undefined || this.#queue.length > 0 || this.#outages.length > 0) {
        const current = next ?? this.#prepare(this.#queue.splice(0, this.opts.batchSize));
        next = this.#queue.length > 0 ? this.#prepare(this.#queue.splice(0, this.opts.batchSize)) : undefined;
        try {
          await this.#commit(await current);
        } catch (err) {
          this.#stats.errors++;
          this.#emit('error', err instanceof Error ? err : new Error(String(err)));
          // Both batches come again (nak); classification restarts from the store's head.
          for (const p of [current, next]) {
            const prepared = await p?.catch(() => undefined);
            if (prepared !== undefined) this.#outages.unshift(...prepared.outages);
          }
          next = undefined;
          this.#prepNext = undefined;
          for (const m of this.#failedBatches.splice(0)) m.nak(1000);
          if (err instanceof AuditError && err.code === 'writer_conflict') {
            // Another writer owns the log: stop reading rather than fork the chain.
            this.#messages?.stop();
            this.#queue.length = 0;
          }
        }
      }
    } finally {
      this.#draining = undefined;
    }
  }

  #prepare(batch: JsMsg[]): Promise<Prepared> {
    this.#failedBatches.push(...batch);
    const classified = this.#prepTail.then(() => this.#classify(batch));
    this.#prepTail = classified.then(
      () => undefined,
      () => undefined,
    );
    return classified.then(async (c) => ({ ...c, verdicts: await this.#verdicts(c.fresh) }));
  }

  /** Splits a batch into fresh messages (with those fetched for missing sequences), gaps and duplicates. In order. */
  async #classify(batch: JsMsg[]): Promise<Omit<Prepared, 'verdicts'>> {
    let next = this.#prepNext ?? this.store.lastSeq + 1;
    const fresh: Fresh[] = [];
    const gaps: { from: number; to: number; before: number }[] = [];
    let duplicates = 0;
    for (const m of batch) {
      const seq = m.seq;
      if (seq < next) {
        duplicates++;
        continue;
      }
      if (seq > next) {
        const found = await this.#resolveMissing(next, seq - 1);
        for (const item of found) {
          if ('gap' in item) gaps.push({ from: item.gap[0], to: item.gap[1], before: fresh.length });
          else fresh.push(item);
        }
      }
      fresh.push({ seq, subject: m.subject, data: new Uint8Array(m.data), time: Math.floor(m.info.timestampNanos / 1e6) });
      next = seq + 1;
    }
    this.#prepNext = next;
    return { batch, fresh, gaps, duplicates, outages: this.#outages.splice(0) };
  }

  async #commit(p: Prepared): Promise<void> {
    const records: NewRecord[] = [];
    const now = Date.now();
    for (const o of p.outages) {
      const note = JSON.stringify({ from: o.from, to: o.to, server_before: o.serverBefore ?? null, server_after: o.serverAfter ?? null });
      const seq = this.store.lastSeq;
      records.push({
        kind: 'outage',
        time: o.to,
        seqFirst: seq,
        seqLast: seq,
        subject: '',
        verdict: 'server_changed',
        frame: Buffer.from(note),
      });
    }
    let g = 0;
    for (let i = 0; i <= p.fresh.length; i++) {
      while (g < p.gaps.length && p.gaps[g]!.before === i) {
        const gap = p.gaps[g++]!;
        records.push({ kind: 'gap', time: now, seqFirst: gap.from, seqLast: gap.to, subject: '', verdict: '', frame: new Uint8Array(0) });
      }
      const f = p.fresh[i];
      if (f === undefined) break;
      records.push({
        kind: 'frame',
        time: f.time,
        seqFirst: f.seq,
        seqLast: f.seq,
        subject: f.subject,
        verdict: p.verdicts[i]!,
        frame: f.data,
      });
    }
    const appended = await this.store.append(records);
    p.batch[p.batch.length - 1]?.ack();
    // acked: these messages are no longer to be nak'ed on a later failure
    this.#failedBatches.splice(0, p.batch.length);
    this.#stats.duplicates += p.duplicates;
    this.#account(appended);
  }

  #account(appended: readonly AuditRecord[]): void {
    if (appended.length === 0) return;
    const s = this.#stats;
    s.records = this.store.length;
    s.lastSeq = this.store.lastSeq;
    for (const r of appended) {
      if (r.kind === 'outage') {
        s.outages++;
        const note = JSON.parse(Buffer.from(r.frame).toString('utf8')) as {
          from: number;
          to: number;
          server_before: string | null;
          server_after: string | null;
        };
        this.#emit('outage', {
          from: note.from,
          to: note.to,
          position: r.position,
          serverBefore: note.server_before ?? undefined,
          serverAfter: note.server_after ?? undefined,
        });
        this.#sinceCheckpoint++;
        continue;
      }
      if (r.kind === 'gap') {
        s.gaps++;
        s.missing += r.seqLast - r.seqFirst + 1;
        this.#emit('gap', { from: r.seqFirst, to: r.seqLast, position: r.position });
        this.#sinceCheckpoint++;
        continue;
      }
      s.verdicts[r.verdict] = (s.verdicts[r.verdict] ?? 0) + 1;
      // Our own checkpoints, captured off the mesh, do not call for another checkpoint: no loop.
      if (!this.#isOwnCheckpoint(r)) this.#sinceCheckpoint++;
    }
    this.#emit('records', appended);
    if (this.#sinceCheckpoint >= this.opts.every) void this.checkpoint().catch((err: Error) => this.#emit('error', err));
  }

  #isOwnCheckpoint(r: AuditRecord): boolean {
    if (r.subject !== this.#ownSubject) return false;
    if (r.verdict === VERDICT_OK) return true;
    // unchecked: our subject and our key in the header (a forgery there would still be a record that counts)
    return r.verdict === VERDICT_UNCHECKED && r.frame.length > 33 && Buffer.from(this.#key.publicKey).equals(r.frame.subarray(1, 33));
  }

  async #verdicts(fresh: readonly { subject: string; data: Uint8Array }[]): Promise<string[]> {
    if (this.init.verifyOnIngest === false) return fresh.map(() => VERDICT_UNCHECKED);
    if (fresh.length < 32 || this.#pool.workers === 0) return fresh.map((f) => statelessVerdict(f.subject, f.data));
    const valid = await this.#pool.check(fresh.map((f) => f.data));
    return fresh.map((f, i) => verdictGivenSignature(f.subject, f.data, valid[i]!));
  }

  /**
   * Sequences [from, to] were not delivered in order. Those the stream still
   * has are fetched and recorded; those it no longer has (dropped by its limits)
   * become gap records.
   */
  async #resolveMissing(from: number, to: number): Promise<({ gap: [number, number] } | Fresh)[]> {
    const out: ({ gap: [number, number] } | Fresh)[] = [];
    const info = await this.jsm.streams.info(this.stream);
    const first = info.state.first_seq;
    let open: [number, number] | undefined;
    const miss = (seq: number) => {
      if (open !== undefined && open[1] === seq - 1) open[1] = seq;
      else {
        if (open !== undefined) out.push({ gap: open });
        open = [seq, seq];
      }
    };
    const goneTo = Math.min(to, first - 1);
    if (goneTo >= from) open = [from, goneTo];
    for (let seq = Math.max(from, first); seq <= to; seq++) {
      let stored: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>> = null;
      try {
        stored = await this.jsm.streams.getMessage(this.stream, { seq });
      } catch (err) {
        if (!isNotFound(err) && !/no message/i.test(String((err as Error).message))) throw err;
      }
      if (stored === null) miss(seq);
      else {
        if (open !== undefined) out.push({ gap: open });
        open = undefined;
        out.push({ seq, subject: stored.subject, data: new Uint8Array(stored.data), time: stored.time.getTime() });
      }
    }
    if (open !== undefined) out.push({ gap: open });
    return out;
  }

  stats(): AuditStats {
    return { ...this.#stats, records: this.store.length, lastSeq: this.store.lastSeq, verdicts: { ...this.#stats.verdicts } };
  }

  on<K extends keyof AuditEvents>(event: K, listener: AuditEvents[K]): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (...args: never[]) => void);
    return () => set.delete(listener as (...args: never[]) => void);
  }

  #emit<K extends keyof AuditEvents>(event: K, ...args: Parameters<AuditEvents[K]>): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        (listener as unknown as (...a: Parameters<AuditEvents[K]>) => void)(...args);
      } catch (err) {
        process.emitWarning(`audit ${event} listener threw: ${(err as Error).message}`);
      }
    }
  }

  checkpoint(): Promise<Checkpoint | undefined> {
    this.#checkpointing ??= this.#checkpoint().finally(() => {
      this.#checkpointing = undefined;
    });
    return this.#checkpointing;
  }

  async #checkpoint(): Promise<Checkpoint | undefined> {
    if (this.#sinceCheckpoint === 0 || this.store.length === 0) return undefined;
    const counted = this.#sinceCheckpoint;
    const cp = signCheckpoint(this.#key, this.mesh, this.store.length, this.store.head);
    await this.store.saveCheckpoint(cp.frame);
    this.#sinceCheckpoint -= counted;
    this.#stats.checkpoints++;
    if ((this.init.publishCheckpoints ?? true) && !this.nc.isClosed()) this.nc.publish(this.#ownSubject, cp.frame);
    this.#emit('checkpoint', cp);
    return cp;
  }

  async caughtUp(timeoutMs = 10_000): Promise<void> {
    if (this.#stopped) throw new AuditError('not_running', 'the audit service is stopped');
    const target = (await this.jsm.streams.info(this.stream)).state.last_seq;
    const deadline = Date.now() + timeoutMs;
    while (this.store.lastSeq < target) {
      if (Date.now() > deadline) {
        throw new AuditError('timeout', `audit is at capture sequence ${this.store.lastSeq}, not ${target}, after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#messages?.stop();
    await this.#messages?.closed().catch(() => undefined);
    while (this.#draining !== undefined) await this.#draining;
    if (this.init.checkpointOnStop ?? true) await this.checkpoint().catch((err: Error) => this.#emit('error', err));
    await this.#checkpointing;
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
    await this.#pool.close();
    if (this.init.store === undefined) await this.store.close();
    if (this.init.connection === undefined) await this.nc.close();
  }
}
