/** What every store offers: an append-only chain of records, a place for checkpoints, and a way to read both back. */
import type { AuditRecord, RecordFields } from './record.ts';

/** One stored unit as read back: the body bytes and the hash stored beside them, not yet checked. */
export type LogEntry = { body: Uint8Array; hash: Uint8Array } | { malformed: string };

/** A log to verify or query: its mesh and its stored units in order. */
export interface LogSource {
  readonly mesh: string;
  /** Stored units in order. A damaged or incomplete tail ends the iteration with one `{ malformed }` entry. */
  entries(): AsyncIterable<LogEntry>;
  /** Checkpoint frames kept beside the log (side file or stream), in the order they were stored. */
  checkpoints(): Promise<Uint8Array[]>;
}

/** Fields of a record to append: the store assigns the position. */
export type NewRecord = Omit<RecordFields, 'position'>;

/** An append-only store of chained records. One writer at a time. */
export interface AuditStore extends LogSource {
  /** Number of records; also the position of the last one (0 when empty). */
  readonly length: number;
  /** Hash of the last record; the genesis hash when empty. */
  readonly head: Uint8Array;
  /** Capture stream sequence covered by the last record (`seqLast`); 0 when empty. */
  readonly lastSeq: number;
  /** Chains and appends records; resolves once they are durable. */
  append(records: readonly NewRecord[]): Promise<AuditRecord[]>;
  /** Keeps a signed checkpoint frame; resolves once it is durable. */
  saveCheckpoint(frame: Uint8Array): Promise<void>;
  close(): Promise<void>;
}
