import { type FrameVerifier, HEADER_LENGTH, type Rejected, signingInput, type VerifyResult } from '@trustmesh/protocol';
import type { ExtensionSink } from '../inbound.ts';
import type { VerifyPool } from './pool.ts';

/** A frame past FrameVerifier.precheck, waiting for its signature check. */
type Pending = Extract<ReturnType<FrameVerifier['precheck']>, { ok: true }>;

export interface PooledVerifierInit {
  verifier: FrameVerifier;
  pool: VerifyPool;
  /** Where each frame's result goes, in arrival order (Inbound.settle). */
  settle: (subject: string, data: Uint8Array, result: VerifyResult, sink: ExtensionSink | undefined) => void;
  /** Called when frames may flow again after {@link PooledVerifier.ready} said no (Intake.resume). */
  resume: () => void;
  /**
   * Frames still waiting before this stage (Intake.queued). A frame that comes
   * alone (nothing waiting, nothing in the pool) is verified on this thread:
   * at low load a round trip to a worker would only add latency.
   */
  backlog?: () => number;
  /** Frames per batch sent to a worker; default 64. */
  batchSize?: number;
  /** Frames of this agent in the pool at once; past it the intake holds frames (and its bounds apply). Default 8 batches per worker. */
  maxInFlight?: number;
}

interface Entry {
  subject: string;
  data: Uint8Array;
  sink: ExtensionSink | undefined;
  /** Set when the frame needs a signature check; otherwise `rejected` is its result. */
  pending: Pending | undefined;
  rejected: Rejected | undefined;
}

interface Batch {
  entries: Entry[];
  /** Frames of the batch sent to a worker. */
  sent: number;
  verdicts: Uint8Array | Error | undefined;
}

/**
 * One agent's verification through a {@link VerifyPool}: the cheap checks
 * before the signature (FrameVerifier.precheck) here, signatures in batches on
 * the workers, then the body and the stateful checks (audience, window, replay)
 * back here, frame by frame in arrival order: batches complete in the order
 * they were filled, whatever order the workers answer in, so every sender's
 * frames keep their order. A frame refused before its signature check waits
 * its turn too.
 */
export class PooledVerifier {
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private filling: Batch | undefined;
  private readonly queue: Batch[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private waiting = false;
  private closed = false;
  /** Frames verified on this thread because they came alone (diagnostics, tests). */
  inline = 0;

  constructor(private readonly init: PooledVerifierInit) {
    this.batchSize = init.batchSize ?? 64;
    this.maxInFlight = init.maxInFlight ?? 8 * this.batchSize * init.pool.size;
  }

  /** Whether the intake may hand over another frame now. */
  ready(): boolean {
    if (this.inFlight < this.maxInFlight) return true;
    this.waiting = true;
    return false;
  }

  submit(subject: string, data: Uint8Array, sink: ExtensionSink | undefined): void {
    if (this.closed) return;
    const checked = this.init.verifier.precheck(data, { subject });
    if (this.queue.length === 0 && this.init.backlog !== undefined && this.init.backlog() === 0) {
      // Alone: everything before it is settled, so order holds.
      this.inline++;
      this.init.settle(subject, data, checked.ok ? this.init.verifier.complete(checked, verifyHere(checked)) : checked, sink);
      return;
    }
    const entry: Entry = checked.ok
      ? { subject, data, sink, pending: checked, rejected: undefined }
      : { subject, data, sink, pending: undefined, rejected: checked };
    let batch = this.filling;
    if (batch === undefined) {
      this.filling = batch = { entries: [], sent: 0, verdicts: undefined };
      this.queue.push(batch);
    }
    batch.entries.push(entry);
    if (entry.pending !== undefined) {
      batch.sent++;
      this.inFlight++;
    }
    if (batch.sent >= this.batchSize) this.send(batch);
    else if (!this.flushScheduled) {
      // The rest goes when the intake's current slice is done.
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        if (this.filling !== undefined) this.send(this.filling);
      });
    }
  }

  /** Stops: frames in the pool are dropped when their verdicts come (the agent left). */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.filling = undefined;
  }

  private send(batch: Batch): void {
    this.filling = undefined;
    if (batch.sent === 0) {
      batch.verdicts = new Uint8Array(0);
      this.complete();
      return;
    }
    const frames: Uint8Array[] = [];
    for (const e of batch.entries) if (e.pending !== undefined) frames.push(e.data);
    this.init.pool.verify(frames, (verdicts) => {
      this.inFlight -= batch.sent;
      if (this.closed) return;
      batch.verdicts = verdicts;
      this.complete();
      if (this.waiting && this.inFlight < this.maxInFlight) {
        this.waiting = false;
        this.init.resume();
      }
    });
  }

  /** Settles the batches at the head of the queue that have their verdicts. */
  private complete(): void {
    const { verifier, settle } = this.init;
    while (this.queue.length > 0 && this.queue[0]!.verdicts !== undefined && !this.closed) {
      const batch = this.queue.shift()!;
      const verdicts = batch.verdicts!;
      let k = 0;
      for (const e of batch.entries) {
        let result: VerifyResult;
        if (e.pending === undefined) result = e.rejected!;
        else {
          // A pool that failed (a worker died, or it closed) leaves the check to this thread.
          const ok = verdicts instanceof Error ? verifyHere(e.pending) : verdicts[k++] === 1;
          result = verifier.complete(e.pending, ok);
        }
        settle(e.subject, e.data, result, e.sink);
      }
    }
  }
}

function verifyHere(pending: Pending): boolean {
  const frame = pending.frame;
  return pending.signer.verify(signingInput(frame.subarray(HEADER_LENGTH)), frame.subarray(33, HEADER_LENGTH));
}
