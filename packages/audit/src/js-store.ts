/**
 * The shared-deployment store: a JetStream stream with `deny_delete` and
 * `deny_purge`, one message per record (the same stored bytes as the file
 * store), message sequence = record position. Every publish carries
 * expected-last-sequence = position − 1, so a second writer's publish fails
 * (`writer_conflict`) instead of forking the chain. Checkpoint frames go to a
 * second stream with the same protections.
 *
 * Deleting the whole stream is still possible through the JetStream API:
 * secure mode must deny `$JS.API.STREAM.DELETE.*` to everyone but the operator.
 */
import {
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { assertMeshName } from '@trustmesh/protocol';
import { isNotFound } from './capture.ts';
import { AuditError } from './errors.ts';
import { type AuditRecord, chainRecord, decodeBody, encodeStored, genesisHash, readStored } from './record.ts';
import type { AuditStore, LogEntry, NewRecord } from './store.ts';

export interface JetStreamStoreInit {
  mesh: string;
  connection: NatsConnection;
  /** Stream replicas (clustered servers); default 1. */
  replicas?: number;
}

export const logStreamName = (mesh: string): string => `tm_${mesh}_audit_log`;
export const checkpointStreamName = (mesh: string): string => `tm_${mesh}_audit_checkpoints`;
/** Outside the mesh root, so the capture stream never captures the log itself. */
const logSubject = (mesh: string): string => `tmaudit.${mesh}.log`;
const checkpointStoreSubject = (mesh: string): string => `tmaudit.${mesh}.checkpoint`;

async function ensureStream(jsm: JetStreamManager, name: string, subject: string, replicas: number): Promise<void> {
  try {
    const info = await jsm.streams.info(name);
    if (!info.config.deny_delete || !info.config.deny_purge) {
      throw new AuditError('log_mismatch', `stream ${name} exists without deny_delete and deny_purge`);
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add({
      name,
      subjects: [subject],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      storage: StorageType.File,
      num_replicas: replicas,
      max_msgs: -1,
      max_bytes: -1,
      max_age: 0,
      deny_delete: true,
      deny_purge: true,
      allow_rollup_hdrs: false,
    });
  }
}

export async function openJetStreamStore(init: JetStreamStoreInit): Promise<AuditStore> {
  assertMeshName(init.mesh);
  const jsm = await jetstreamManager(init.connection);
  const js = jetstream(init.connection);
  const stream = logStreamName(init.mesh);
  await ensureStream(jsm, stream, logSubject(init.mesh), init.replicas ?? 1);
  await ensureStream(jsm, checkpointStreamName(init.mesh), checkpointStoreSubject(init.mesh), init.replicas ?? 1);
  const store = new JetStreamStore(init.mesh, jsm, js, stream);
  await store.load();
  return store;
}

class JetStreamStore implements AuditStore {
  #length = 0;
  #head: Uint8Array;
  #lastSeq = 0;
  #broken: AuditError | undefined;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly mesh: string,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly stream: string,
  ) {
    this.#head = genesisHash(mesh);
  }

  /** The head is the last message; the chain itself is checked by verifyLog. */
  async load(): Promise<void> {
    const { state } = await this.jsm.streams.info(this.stream);
    if (state.messages === 0) return;
    if (state.first_seq !== 1 || state.messages !== state.last_seq) {
      throw new AuditError(
        'log_corrupt',
        `stream ${this.stream} holds ${state.first_seq}..${state.last_seq} with ${state.messages} messages`,
      );
    }
    const last = await this.jsm.streams.getMessage(this.stream, { seq: state.last_seq });
    const unit = last === null ? undefined : readStored(last.data, 0);
    const decoded = unit?.status === 'record' ? decodeBody(unit.body) : undefined;
    if (unit?.status !== 'record' || !decoded?.ok || decoded.fields.position !== state.last_seq) {
      throw new AuditError('log_corrupt', `the last message of ${this.stream} is not record ${state.last_seq}`);
    }
    this.#length = state.last_seq;
    this.#head = new Uint8Array(unit.hash);
    this.#lastSeq = decoded.fields.seqLast;
  }

  get length(): number {
    return this.#length;
  }
  get head(): Uint8Array {
    return this.#head;
  }
  get lastSeq(): number {
    return this.#lastSeq;
  }

  append(records: readonly NewRecord[]): Promise<AuditRecord[]> {
    const run = this.#queue.then(() => this.#append(records));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #append(records: readonly NewRecord[]): Promise<AuditRecord[]> {
    if (this.#closed) throw new AuditError('store_closed', `${this.stream} store is closed`);
    if (this.#broken !== undefined) throw this.#broken;
    let head = this.#head;
    const out: AuditRecord[] = [];
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < records.length; i++) {
      const position = this.#length + 1 + i;
      const { record, body } = chainRecord(head, { ...records[i]!, position });
      out.push(record);
      head = record.hash;
      // Pipelined: each publish expects its predecessor, so the first foreign message fails this and every later one.
      acks.push(this.js.publish(logSubject(this.mesh), encodeStored(body, record.hash), { expect: { lastSequence: position - 1 } }));
    }
    const results = await Promise.allSettled(acks);
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      const reason = (results[failed] as PromiseRejectedResult).reason as Error;
      const conflict = /wrong last sequence/i.test(reason.message) || (reason as { code?: unknown }).code === 10071;
      this.#broken = new AuditError(
        conflict ? 'writer_conflict' : 'log_corrupt',
        conflict
          ? `another writer appended to ${this.stream}; this writer stops (reopen to continue from the stream's head)`
          : `append to ${this.stream} failed: ${reason.message}`,
        { cause: reason },
      );
      throw this.#broken;
    }
    this.#length += records.length;
    this.#head = head;
    if (out.length > 0) this.#lastSeq = out[out.length - 1]!.seqLast;
    return out;
  }

  async saveCheckpoint(frame: Uint8Array): Promise<void> {
    await this.js.publish(checkpointStoreSubject(this.mesh), frame);
  }

  async *#read(stream: string): AsyncGenerator<Uint8Array> {
    const last = (await this.jsm.streams.info(stream)).state.last_seq;
    if (last === 0) return;
    const consumer = await this.js.consumers.get(stream);
    const messages = await consumer.consume({ max_messages: 1000 });
    try {
      for await (const m of messages) {
        yield new Uint8Array(m.data);
        if (m.seq >= last) break;
      }
    } finally {
      messages.stop();
    }
  }

  async *entries(): AsyncGenerator<LogEntry> {
    for await (const data of this.#read(this.stream)) {
      const unit = readStored(data, 0);
      if (unit.status !== 'record' || unit.next !== data.length) {
        yield { malformed: unit.status === 'malformed' ? unit.detail : 'message is not one stored record' };
        return;
      }
      yield { body: unit.body, hash: unit.hash };
    }
  }

  async checkpoints(): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for await (const data of this.#read(checkpointStreamName(this.mesh))) out.push(data);
    return out;
  }

  async close(): Promise<void> {
    await this.#queue;
    this.#closed = true;
  }
}
